/**
 * The `roost` commands that read or change what is in the database (devices, rules, roles, tokens,
 * bans, imports). They run on a database handle: the CLI's own, or, when a running Roost holds the
 * embedded data folder, that process's, reached through POST /api/commands (cli/delegate.ts).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createApiToken, defaultTokenExpiry } from '../api/tokens.js';
import { AuthError } from '../auth/errors.js';
import { ImportError } from '../auth/go-auth-import.js';
import { AUTH_COMMANDS, AuthUsageError, runAuthCommand, type AuthCommandContext } from './auth.js';
import { BAN_COMMANDS, runBanCommand } from './bans.js';
import { IMPORT_COMMANDS, runImportCommand } from './import.js';

export type CommandContext = AuthCommandContext;

export const DATA_COMMANDS: readonly string[] = ['token', ...BAN_COMMANDS, ...AUTH_COMMANDS, ...IMPORT_COMMANDS];

/** Options whose value is a file the command reads; the CLI sends their contents along when it delegates. */
export const FILE_OPTIONS = ['--password-file', '--passwd', '--acl', '--file'] as const;

/** A file named on the command line, as the CLI read it: its text, or why it could not (an errno code). */
export type CommandFile = { text: string } | { error: string };

/** Reads only what the CLI sent: the running process never opens a path given to it. */
export function readSentFile(files: Record<string, CommandFile>): (file: string) => string {
  return (file) => {
    const sent = Object.hasOwn(files, file) ? files[file] : { error: 'ENOENT' };
    if ('text' in sent) return sent.text;
    throw Object.assign(new Error(sent.error), { code: sent.error });
  };
}

/** The files a command line names, read here (relative paths from the directory the user is in). */
export function filesNamedIn(args: readonly string[]): Record<string, CommandFile> {
  const files: Record<string, CommandFile> = {};
  args.forEach((arg, i) => {
    const option = FILE_OPTIONS.find((o) => arg === o || arg.startsWith(`${o}=`));
    if (!option) return;
    const file = arg === option ? args[i + 1] : arg.slice(option.length + 1);
    if (file === undefined) return;
    try {
      files[file] = { text: readFileSync(file, 'utf8') };
    } catch (err) {
      files[file] = { error: (err as NodeJS.ErrnoException).code ?? 'EIO' };
    }
  });
  return files;
}

/** An error the user caused (a usage mistake, a refused change): one line, no stack. */
export function isCommandError(err: unknown): err is Error & { code: string } {
  return err instanceof AuthUsageError || err instanceof AuthError || err instanceof ImportError;
}

async function tokenCommand(args: string[], ctx: CommandContext): Promise<void> {
  const usage = 'usage: roost token create --name NAME [--role admin|viewer]';
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { name: { type: 'string' }, role: { type: 'string', default: 'admin' } } });
  } catch (err) {
    throw new AuthUsageError(`${(err as Error).message}\n${usage}`);
  }
  const { values, positionals } = parsed;
  if (positionals[0] !== 'create' || !values.name || !['admin', 'viewer'].includes(values.role!)) throw new AuthUsageError(usage);
  const { token } = await createApiToken(ctx.db, values.name, values.role as 'admin' | 'viewer', defaultTokenExpiry(ctx.config.ROOST_API_TOKEN_TTL_DAYS));
  ctx.out(token);
}

/** Runs one data command on a migrated database. */
export async function runDataCommand(args: string[], ctx: CommandContext): Promise<void> {
  const [command, ...rest] = args;
  if (command === 'token') return tokenCommand(rest, ctx);
  if (command === 'ban') return runBanCommand(args, ctx);
  if (await runImportCommand(args, ctx)) return;
  if (await runAuthCommand(args, ctx)) return;
  throw new AuthUsageError(`unknown command "${command}"; commands: ${DATA_COMMANDS.join(', ')}`);
}
