/**
 * POST /api/commands: runs a `roost` data command (cli/commands.ts) in this process, for the CLI on
 * this machine when this process holds the embedded data folder (cli/delegate.ts). Admin only.
 * Files named on the command line arrive with the request; this process never reads a path it is given.
 */
import type { FastifyPluginAsync } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { isCommandError, readSentFile, runDataCommand, type CommandFile } from '../../cli/commands.js';
import { audit } from '../audit.js';
import { bearerSecurity, requireRole } from '../auth.js';

/** Large enough for a Mosquitto passwd file or an EMQX users export of a big fleet. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const commandRoutes: FastifyPluginAsync = async (app) => {
  const { db, config } = app.roost;
  const err = { 400: { $ref: 'error#' }, 401: { $ref: 'error#' }, 403: { $ref: 'error#' } };

  app.post<{ Body: { args: string[]; files?: Record<string, CommandFile> } }>('/commands', {
    preHandler: requireRole('admin'),
    bodyLimit: MAX_BODY_BYTES,
    schema: {
      tags: ['commands'],
      security: bearerSecurity,
      description: 'Runs a roost command (device, rule, role, token, ban, import-*) here and returns what it printed: how `roost` reaches the process that holds the embedded database.',
      body: {
        type: 'object',
        required: ['args'],
        additionalProperties: false,
        properties: {
          args: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', maxLength: 4096 } },
          files: {
            type: 'object',
            additionalProperties: {
              type: 'object',
              additionalProperties: false,
              properties: { text: { type: 'string' }, error: { type: 'string', pattern: '^E[A-Z]+$' } },
              minProperties: 1,
              maxProperties: 1,
            },
          },
        },
      },
      response: { 200: { type: 'object', properties: { output: { type: 'array', items: { type: 'string' } } } }, ...err },
    },
  }, async (req, reply) => {
    const { args, files = {} } = req.body;
    const output: string[] = [];
    try {
      await runDataCommand(args, { db, config, out: (line) => output.push(line), readFile: readSentFile(files) });
    } catch (e) {
      if (!isCommandError(e)) throw e;
      return reply.code(400).send({ statusCode: 400, code: e.code, error: STATUS_CODES[400], message: e.message });
    }
    // The command line names what was done; its values (a --password) stay out of the log.
    await audit(db, req, 'command.run', args.slice(0, 2).join(' '));
    return { output };
  });
};

export default commandRoutes;
