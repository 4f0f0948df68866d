/**
 * `roost import-go-auth` and `roost import-emqx`: devices and rules from mosquitto-go-auth tables or
 * from EMQX (PostgreSQL tables, or a built-in database users file), keeping the password hashes so
 * devices connect with the passwords they have. --dry-run reports exactly what would be done.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { emqxAccount, parseEmqxUsersFile, type EmqxHashSettings } from '../auth/emqx.js';
import { readEmqxTables, readGoAuth, type SourceRead } from '../auth/go-auth.js';
import { checkRow, importAccounts, ImportError, type AccountImportReport, type ImportedAccount } from '../auth/go-auth-import.js';
import { AuthUsageError, readCommandFile, type AuthCommandContext } from './auth.js';

export const IMPORT_COMMANDS = ['import-go-auth', 'import-emqx'] as const;

const GO_AUTH_USAGE =
  'roost import-go-auth --from POSTGRES_URL [--users-table mqtt_users] [--acls-table mqtt_acls] [--salt-encoding base64|utf-8] [--dry-run]';
const EMQX_USAGE =
  'roost import-emqx (--from POSTGRES_URL [--users-table mqtt_user] [--acl-table mqtt_acl] | --file USERS.json|USERS.csv)\n' +
  '                  --hash sha256|sha512|pbkdf2|bcrypt [--salt-position prefix|suffix|disable] [--mac sha256|sha512|sha1] [--iterations N] [--dry-run]';

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new AuthUsageError(`${(err as Error).message}\nusage: ${usage}`);
  }
}

function printReport(out: (line: string) => void, report: AccountImportReport): void {
  const would = report.dryRun ? 'would be ' : '';
  if (report.dryRun) out('dry run: nothing was written');
  out(`devices ${would}created: ${report.devicesCreated.length}${report.devicesCreated.length ? ` (${report.devicesCreated.join(', ')})` : ''}`);
  if (report.devicesKept.length) out(`devices already present, left as they are: ${report.devicesKept.join(', ')}`);
  out(`rules ${would}added: ${report.rulesAdded}, already present: ${report.rulesSkipped}`);
  const hashes = Object.entries(report.hashes).map(([k, n]) => `${k} ${n}`).join(', ');
  if (hashes) out(`password hashes: ${hashes} (all but bcrypt become bcrypt at each device's first login)`);
  for (const w of report.warnings) out(`warning: ${w}`);
}

async function run(ctx: AuthCommandContext, source: string, read: SourceRead, dryRun: boolean): Promise<void> {
  const report = await importAccounts(ctx.db, read.accounts, { source, dryRun, warnings: read.warnings });
  printReport(ctx.out, report);
}

async function goAuthCommand(args: string[], ctx: AuthCommandContext): Promise<void> {
  const v = parse(args, {
    from: { type: 'string' },
    'users-table': { type: 'string', default: 'mqtt_users' },
    'acls-table': { type: 'string', default: 'mqtt_acls' },
    'salt-encoding': { type: 'string', default: 'base64' },
    'dry-run': { type: 'boolean', default: false },
  }, GO_AUTH_USAGE);
  if (!v.from || !['base64', 'utf-8'].includes(v['salt-encoding'] as string)) throw new AuthUsageError(`usage: ${GO_AUTH_USAGE}`);
  const read = await readGoAuth(v.from as string, {
    usersTable: v['users-table'] as string,
    aclsTable: v['acls-table'] as string,
    saltEncoding: v['salt-encoding'] as 'base64' | 'utf-8',
  });
  await run(ctx, 'go-auth-import', read, v['dry-run'] === true);
}

function hashSettings(v: Record<string, string | boolean | undefined>): EmqxHashSettings {
  switch (v.hash) {
    case 'sha256':
    case 'sha512': {
      const saltPosition = (v['salt-position'] ?? 'prefix') as string;
      if (!['prefix', 'suffix', 'disable'].includes(saltPosition)) throw new AuthUsageError(`--salt-position prefix|suffix|disable\nusage: ${EMQX_USAGE}`);
      return { algorithm: v.hash, saltPosition: saltPosition as 'prefix' | 'suffix' | 'disable' };
    }
    case 'pbkdf2': {
      const mac = (v.mac ?? 'sha256') as string;
      const iterations = Number(v.iterations ?? 4096);
      if (!['sha256', 'sha512', 'sha1'].includes(mac) || !Number.isInteger(iterations) || iterations < 1 || iterations > 9_999_999) {
        throw new AuthUsageError(`--mac sha256|sha512|sha1 --iterations N (1-9999999)\nusage: ${EMQX_USAGE}`);
      }
      return { algorithm: 'pbkdf2', mac: mac as 'sha256' | 'sha512' | 'sha1', iterations };
    }
    case 'bcrypt':
      return { algorithm: 'bcrypt' };
    default:
      throw new AuthUsageError(`--hash is the password_hash_algorithm of the EMQX authenticator\nusage: ${EMQX_USAGE}`);
  }
}

async function emqxCommand(args: string[], ctx: AuthCommandContext): Promise<void> {
  const v = parse(args, {
    from: { type: 'string' },
    file: { type: 'string' },
    'users-table': { type: 'string', default: 'mqtt_user' },
    'acl-table': { type: 'string' },
    hash: { type: 'string' },
    'salt-position': { type: 'string' },
    mac: { type: 'string' },
    iterations: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
  }, EMQX_USAGE);
  if (Boolean(v.from) === Boolean(v.file)) throw new AuthUsageError(`give --from or --file\nusage: ${EMQX_USAGE}`);
  const hash = hashSettings(v);
  let read: SourceRead;
  if (v.from) {
    read = await readEmqxTables(v.from as string, { usersTable: v['users-table'] as string, aclTable: v['acl-table'] as string | undefined, hash });
  } else {
    const file = v.file as string;
    let text: string;
    try {
      text = readCommandFile(ctx, file);
    } catch (err) {
      throw new ImportError([`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
    }
    const problems: string[] = [];
    const rows = checkRow(problems, file, () => parseEmqxUsersFile(text, file)) ?? [];
    const accounts: ImportedAccount[] = [];
    rows.forEach((row, i) => {
      const where = `${file} row ${i + 1} (${row.user_id})`;
      const a = checkRow(problems, where, () => emqxAccount(row, where, hash));
      if (a) accounts.push(a);
    });
    if (problems.length > 0) throw new ImportError(problems);
    read = { accounts, warnings: [] };
  }
  await run(ctx, 'emqx-import', read, v['dry-run'] === true);
}

/** Runs an import command; false when `args` is not one. */
export async function runImportCommand(args: string[], ctx: AuthCommandContext): Promise<boolean> {
  const [command, ...rest] = args;
  if (command === 'import-go-auth') await goAuthCommand(rest, ctx);
  else if (command === 'import-emqx') await emqxCommand(rest, ctx);
  else return false;
  return true;
}
