#!/usr/bin/env -S node --max-semi-space-size=64
/**
 * The `roost` command. `roost start` (default) runs the broker and the API; `roost api` runs the
 * API alone against the same database; `roost migrate` applies the schema; `roost token create`
 * makes an API token.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../lib/config.js';
import { migrate } from '../lib/db/migrate.js';
import { openConfiguredDb, startApiOnly, startRoost, StartupError } from '../server/roost.js';
import { createApiToken } from '../api/tokens.js';
import { AUTH_COMMANDS, AuthUsageError, runAuthCommand } from './auth.js';
import { IMPORT_COMMANDS, runImportCommand } from './import.js';
import { BAN_COMMANDS, runBanCommand } from './bans.js';
import { ImportError } from '../auth/go-auth-import.js';
import { AuthError } from '../auth/errors.js';

const out = (line: string) => process.stdout.write(line + '\n');

/** An address every client on this machine can use in a URL. */
const shownHost = (address: string) => (address === '0.0.0.0' || address === '::' ? 'localhost' : address);

const LOOPBACK_ONLY_LINE =
  'Loopback-only mode (no address configured): reachable from this machine only, where anonymous clients may read and write every topic but $SYS. ' +
  'To serve other machines, set ROOST_HOST and ROOST_API_HOST (e.g. 0.0.0.0) and add devices: anonymous clients are then refused unless ROOST_ALLOW_ANONYMOUS=true.';

async function start(config: Config): Promise<void> {
  const roost = await startRoost(config);
  const { log, ports } = roost;
  if (roost.firstAdminToken) {
    out(`First admin API token (shown once, stored hashed; make another with "roost token create"):\n  ${roost.firstAdminToken}`);
  }
  const host = shownHost(config.ROOST_HOST);
  const endpoints = [
    ports.mqtt !== undefined && `mqtt://${host}:${ports.mqtt}`,
    ports.mqtts !== undefined && `mqtts://${host}:${ports.mqtts}`,
    ports.ws !== undefined && `ws://${host}:${ports.ws}${config.ROOST_WS_PATH}`,
    ports.wss !== undefined && `wss://${host}:${ports.wss}${config.ROOST_WS_PATH}`,
    ports.api !== undefined && `http://${shownHost(config.ROOST_API_HOST)}:${ports.api} (API)`,
  ].filter(Boolean);
  log.info({ ports, database: roost.db.kind, loopbackOnly: config.loopbackOnly }, 'roost started');
  out(`Roost is listening on ${endpoints.join(', ')} (database: ${roost.db.kind === 'pglite' ? `embedded in ${config.ROOST_DATA_DIR}` : 'PostgreSQL'})`);
  if (config.loopbackOnly) out(LOOPBACK_ONLY_LINE);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ timeoutMs: config.ROOST_SHUTDOWN_TIMEOUT_MS }, 'shutdown took too long, exiting');
      process.exit(1);
    }, config.ROOST_SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    roost.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err) => {
        log.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const [command = 'start', ...rest] = argv;
  const config = loadConfig();
  switch (command) {
    case 'start':
      return start(config);
    case 'api': {
      const apiOnly = await startApiOnly(config);
      out(`Roost API (no broker) is listening on http://${shownHost(config.ROOST_API_HOST)}:${apiOnly.port}`);
      const stop = () => apiOnly.close().then(() => process.exit(0), () => process.exit(1));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      return;
    }
    case 'migrate': {
      const db = await openConfiguredDb(config);
      const report = await migrate(db);
      await db.close();
      out(report.applied.length ? `applied: ${report.applied.join(', ')}` : 'database is up to date');
      return;
    }
    case 'token': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { name: { type: 'string' }, role: { type: 'string', default: 'admin' } },
      });
      if (positionals[0] !== 'create' || !values.name || !['admin', 'viewer'].includes(values.role!)) {
        throw new UsageError('usage: roost token create --name NAME [--role admin|viewer]');
      }
      const db = await openConfiguredDb(config);
      await migrate(db);
      const { token } = await createApiToken(db, values.name, values.role as 'admin' | 'viewer');
      await db.close();
      out(token);
      return;
    }
    case 'ban': {
      const db = await openConfiguredDb(config);
      try {
        await migrate(db);
        await runBanCommand([command, ...rest], { db, out });
      } finally {
        await db.close();
      }
      return;
    }
    default: {
      if ((AUTH_COMMANDS as readonly string[]).includes(command) || (IMPORT_COMMANDS as readonly string[]).includes(command)) {
        const db = await openConfiguredDb(config);
        try {
          await migrate(db);
          if (!(await runImportCommand([command, ...rest], { db, config, out }))) await runAuthCommand([command, ...rest], { db, config, out });
        } finally {
          await db.close();
        }
        return;
      }
      throw new UsageError(`unknown command "${command}"; commands: start, api, migrate, token create, ${[...AUTH_COMMANDS, ...IMPORT_COMMANDS, ...BAN_COMMANDS].join(', ')}`);
    }
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((err: unknown) => {
  // One clear line for the user; the detail only at debug level.
  if (err instanceof ConfigError || err instanceof StartupError || err instanceof UsageError || err instanceof AuthUsageError || err instanceof AuthError || err instanceof ImportError) {
    process.stderr.write(`roost: ${err.message}\n`);
    process.exit(2);
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EADDRINUSE' || e?.code === 'EACCES') {
    process.stderr.write(`roost: cannot listen: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`roost: ${e?.stack ?? String(err)}\n`);
  process.exit(1);
});
