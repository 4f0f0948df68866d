#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072 node --max-semi-space-size=32
/**
 * The `roost` command. `roost start` (default) runs the broker and the API; `roost api` runs the
 * API alone against the same database; `roost migrate` applies the schema; `roost token create`
 * makes an API token.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { ConfigError, loadConfig, type Config } from '../lib/config.js';
import { migrate } from '../lib/db/migrate.js';
import { openConfiguredDb, startApiOnly, startRoost, StartupError } from '../server/roost.js';
import { lockHolder } from '../lib/db/data-dir-lock.js';
import { DATA_COMMANDS, isCommandError, runDataCommand } from './commands.js';
import { CommandRefusedError, HolderUnreachableError, runInHolder } from './delegate.js';

const out = (line: string) => process.stdout.write(line + '\n');

/** Printed once; with ROOST_ADMIN_TOKEN_FILE written there instead (mode 0600), so logs never hold it. */
function showFirstAdminToken(config: Config, token: string): void {
  const file = config.ROOST_ADMIN_TOKEN_FILE;
  if (!file) {
    out(`First admin API token (shown once, stored hashed; make another with "roost token create"):\n  ${token}`);
    return;
  }
  writeFileSync(file, token + '\n', { mode: 0o600 });
  chmodSync(file, 0o600); // mode applies only to a new file
  out(`First admin API token written to ${file} (mode 0600; stored hashed; make another with "roost token create")`);
}

/** An address every client on this machine can use in a URL. */
const shownHost = (address: string) => (address === '0.0.0.0' || address === '::' ? 'localhost' : address);

const apiScheme = (config: Config) => (config.apiTls ? 'https' : 'http');

const LOOPBACK_ONLY_LINE =
  'Loopback-only mode (no address configured): reachable from this machine only, where anonymous clients may read and write every topic but $SYS. ' +
  'To serve other machines, set ROOST_HOST and ROOST_API_HOST (e.g. 0.0.0.0) and add devices: anonymous clients are then refused unless ROOST_ALLOW_ANONYMOUS=true.';

async function start(config: Config): Promise<void> {
  const roost = await startRoost(config);
  const { log, ports } = roost;
  if (roost.firstAdminToken) showFirstAdminToken(config, roost.firstAdminToken);
  const host = shownHost(config.ROOST_HOST);
  const endpoints = [
    ports.mqtt !== undefined && `mqtt://${host}:${ports.mqtt}`,
    ports.mqtts !== undefined && `mqtts://${host}:${ports.mqtts}`,
    ports.ws !== undefined && `ws://${host}:${ports.ws}${config.ROOST_WS_PATH}`,
    ports.wss !== undefined && `wss://${host}:${ports.wss}${config.ROOST_WS_PATH}`,
    ports.api !== undefined && `${apiScheme(config)}://${shownHost(config.ROOST_API_HOST)}:${ports.api} (API)`,
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
      out(`Roost API (no broker) is listening on ${apiScheme(config)}://${shownHost(config.ROOST_API_HOST)}:${apiOnly.port}`);
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
    default: {
      if (!DATA_COMMANDS.includes(command)) {
        const commands = ['start', 'api', 'migrate', ...DATA_COMMANDS.map((c) => (c === 'token' ? 'token create' : c))];
        throw new UsageError(`unknown command "${command}"; commands: ${commands.join(', ')}`);
      }
      return runData(config, [command, ...rest]);
    }
  }
}

/** A data command: in the running Roost that holds the embedded folder, else on the database here. */
async function runData(config: Config, args: string[]): Promise<void> {
  const holder = config.DATABASE_URL ? undefined : lockHolder(config.ROOST_DATA_DIR);
  if (holder) return runInHolder(config.ROOST_DATA_DIR, holder, args, out);
  const db = await openConfiguredDb(config);
  try {
    await migrate(db);
    await runDataCommand(args, { db, config, out });
  } finally {
    await db.close();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((err: unknown) => {
  // One clear line for the user; the detail only at debug level.
  if (
    err instanceof ConfigError ||
    err instanceof StartupError ||
    err instanceof UsageError ||
    err instanceof HolderUnreachableError ||
    err instanceof CommandRefusedError ||
    isCommandError(err)
  ) {
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
