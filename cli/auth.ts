/**
 * The `roost` commands that manage devices, rules and roles, like mosquitto_passwd:
 *
 *   roost import-mosquitto --passwd FILE [--acl FILE]
 *   roost device add USERNAME [--password P | --password-file F] [--superuser] [--disabled]
 *                             [--client-id PATTERN] [--name N] [--type T] [--role R ...]
 *   roost device passwd USERNAME [--password P | --password-file F]
 *   roost device disable|enable|delete USERNAME
 *   roost device list
 *   roost rule add (--device U | --role R) --access read|write|readwrite [--deny] PATTERN
 *   roost rule remove ID
 *   roost rule list [--device U | --role R]
 *   roost role add NAME [--description D]
 *   roost role assign ROLE USERNAME
 *   roost role list
 *
 * Without --password a random password is generated and printed once. The database must be
 * migrated (cli/cli.ts does that before calling runAuthCommand).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Access } from '../auth/acl.js';
import {
  addRule,
  assignRole,
  createDevice,
  createRole,
  deleteDevice,
  listDevices,
  listRoles,
  listRules,
  removeRule,
  setEnabled,
  setPasswordHash,
} from '../auth/admin.js';
import { PasswordHasher } from '../auth/credentials.js';
import { AuthError } from '../auth/errors.js';
import { importMosquitto } from '../auth/import.js';
import { parseAclFile, parsePasswordFile } from '../auth/mosquitto.js';
import type { Config } from '../lib/config.js';
import type { Db } from '../lib/db/index.js';

export interface AuthCommandContext {
  db: Db;
  config: Config;
  out: (line: string) => void;
  /** Reads a file named on the command line; absent: from this machine's disk (see cli/commands.ts). */
  readFile?: (file: string) => string;
}

/** A file named on the command line, read where the command was typed. */
export function readCommandFile(ctx: AuthCommandContext, file: string): string {
  return ctx.readFile ? ctx.readFile(file) : readFileSync(file, 'utf8');
}

/** A command line that does not say what to do; the message is the usage line. */
export class AuthUsageError extends Error {
  readonly code = 'ROOST_ERR_USAGE';
}

export const AUTH_COMMANDS = ['import-mosquitto', 'device', 'rule', 'role'] as const;

const PASSWORD_OPTIONS = {
  password: { type: 'string' },
  'password-file': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new AuthUsageError(`${(err as Error).message}\nusage: ${usage}`);
  }
}

function readText(ctx: AuthCommandContext, file: string, what: string): string {
  try {
    return readCommandFile(ctx, file);
  } catch (err) {
    throw new AuthError('ROOST_ERR_MOSQUITTO_FILE', `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The password given, read from a file (first line), or generated (then `generated` is true). */
function passwordFrom(ctx: AuthCommandContext, values: { password?: string; 'password-file'?: string }): { password: string; generated: boolean } {
  if (values.password !== undefined && values['password-file'] !== undefined) {
    throw new AuthUsageError('give --password or --password-file, not both');
  }
  if (values.password !== undefined) return { password: values.password, generated: false };
  if (values['password-file'] !== undefined) {
    const password = readText(ctx, values['password-file'], 'password file').split(/\r?\n/)[0];
    return { password, generated: false };
  }
  return { password: randomBytes(18).toString('base64url'), generated: true };
}

function hasherFor(config: Config): PasswordHasher {
  return new PasswordHasher({ cost: config.ROOST_BCRYPT_COST, concurrency: 1, queue: 1 });
}

const one = (positionals: string[], index: number, usage: string): string => {
  const value = positionals[index];
  if (value === undefined || positionals.length > index + 1) throw new AuthUsageError(`usage: ${usage}`);
  return value;
};

async function importCommand(args: string[], ctx: AuthCommandContext): Promise<void> {
  const usage = 'roost import-mosquitto --passwd FILE [--acl FILE]';
  const { values } = parse(args, { passwd: { type: 'string' }, acl: { type: 'string' } }, usage);
  if (!values.passwd) throw new AuthUsageError(`usage: ${usage}`);
  const passwords = parsePasswordFile(readText(ctx, values.passwd, 'password file'), values.passwd);
  const acl = values.acl ? parseAclFile(readText(ctx, values.acl, 'ACL file'), values.acl) : undefined;
  const report = await importMosquitto(ctx.db, { passwords, acl, anonymousRole: ctx.config.ROOST_ANONYMOUS_ROLE });
  ctx.out(`devices created: ${report.devicesCreated.length}${report.devicesCreated.length ? ` (${report.devicesCreated.join(', ')})` : ''}`);
  if (report.devicesKept.length) ctx.out(`devices already present, left as they were: ${report.devicesKept.join(', ')}`);
  ctx.out(`rules added: ${report.rulesAdded}, already present: ${report.rulesSkipped}`);
  for (const warning of report.warnings) ctx.out(`warning: ${warning}`);
  ctx.out('Mosquitto hashes are kept and upgraded to bcrypt at each device\'s first login.');
}

async function deviceCommand(args: string[], ctx: AuthCommandContext): Promise<void> {
  const [action = '', ...rest] = args;
  switch (action) {
    case 'add': {
      const usage = 'roost device add USERNAME [--password P | --password-file F] [--superuser] [--disabled] [--client-id PATTERN] [--name N] [--type T] [--role R ...]';
      const { values, positionals } = parse(
        rest,
        {
          ...PASSWORD_OPTIONS,
          superuser: { type: 'boolean' },
          disabled: { type: 'boolean' },
          'client-id': { type: 'string' },
          name: { type: 'string' },
          type: { type: 'string' },
          role: { type: 'string', multiple: true },
        },
        usage,
      );
      const username = one(positionals, 0, usage);
      const { password, generated } = passwordFrom(ctx, values);
      const passwordHash = await hasherFor(ctx.config).hash(password);
      await ctx.db.transaction(async (tx) => {
        await createDevice(tx, {
          username,
          passwordHash,
          superuser: values.superuser ?? false,
          enabled: !values.disabled,
          clientIdPattern: values['client-id'] ?? null,
          name: values.name ?? null,
          type: values.type ?? null,
        });
        for (const role of values.role ?? []) await assignRole(tx, username, role);
      });
      ctx.out(`device ${username} added`);
      if (generated) ctx.out(`password (shown once): ${password}`);
      return;
    }
    case 'passwd': {
      const usage = 'roost device passwd USERNAME [--password P | --password-file F]';
      const { values, positionals } = parse(rest, PASSWORD_OPTIONS, usage);
      const username = one(positionals, 0, usage);
      const { password, generated } = passwordFrom(ctx, values);
      await setPasswordHash(ctx.db, username, await hasherFor(ctx.config).hash(password));
      ctx.out(`password of ${username} changed; its live connections stay, new logins need the new password`);
      if (generated) ctx.out(`password (shown once): ${password}`);
      return;
    }
    case 'disable':
    case 'enable': {
      const username = one(rest, 0, `roost device ${action} USERNAME`);
      await setEnabled(ctx.db, username, action === 'enable');
      ctx.out(action === 'enable' ? `device ${username} enabled` : `device ${username} disabled; its live connections are closed`);
      return;
    }
    case 'delete': {
      const username = one(rest, 0, 'roost device delete USERNAME');
      await deleteDevice(ctx.db, username);
      ctx.out(`device ${username} deleted`);
      return;
    }
    case 'list': {
      for (const d of await listDevices(ctx.db)) {
        const flags = [d.enabled ? 'enabled' : 'disabled', d.superuser && 'superuser', `password:${d.passwordKind}`].filter(Boolean).join(' ');
        const roles = d.roles.length ? ` roles:${d.roles.join(',')}` : '';
        const seen = d.lastSeen ? ` last_seen:${d.lastSeen.toISOString()}` : '';
        ctx.out(`${d.username}\t${flags}${roles}${d.clientIdPattern ? ` client_id:${d.clientIdPattern}` : ''}${seen}`);
      }
      return;
    }
    default:
      throw new AuthUsageError('usage: roost device add|passwd|disable|enable|delete|list ...');
  }
}

async function ruleCommand(args: string[], ctx: AuthCommandContext): Promise<void> {
  const [action = '', ...rest] = args;
  const owner = { device: { type: 'string' }, role: { type: 'string' } } as const;
  switch (action) {
    case 'add': {
      const usage = 'roost rule add (--device USERNAME | --role ROLE) --access read|write|readwrite [--deny] PATTERN';
      const { values, positionals } = parse(rest, { ...owner, access: { type: 'string' }, deny: { type: 'boolean' } }, usage);
      const pattern = one(positionals, 0, usage);
      if (!values.access) throw new AuthUsageError(`usage: ${usage}`);
      const rule = await addRule(ctx.db, {
        device: values.device,
        role: values.role,
        pattern,
        access: values.access as Access,
        effect: values.deny ? 'deny' : 'allow',
      });
      ctx.out(`rule ${rule.id} added: ${rule.effect} ${rule.access} ${rule.pattern} for ${rule.device ? `device ${rule.device}` : `role ${rule.role}`}`);
      return;
    }
    case 'remove': {
      const id = one(rest, 0, 'roost rule remove ID');
      await removeRule(ctx.db, id);
      ctx.out(`rule ${id} removed`);
      return;
    }
    case 'list': {
      const { values } = parse(rest, owner, 'roost rule list [--device USERNAME | --role ROLE]');
      for (const r of await listRules(ctx.db, { device: values.device, role: values.role })) {
        ctx.out(`${r.id}\t${r.device ? `device:${r.device}` : `role:${r.role}`}\t${r.effect}\t${r.access}\t${r.pattern}`);
      }
      return;
    }
    default:
      throw new AuthUsageError('usage: roost rule add|remove|list ...');
  }
}

async function roleCommand(args: string[], ctx: AuthCommandContext): Promise<void> {
  const [action = '', ...rest] = args;
  switch (action) {
    case 'add': {
      const usage = 'roost role add NAME [--description TEXT]';
      const { values, positionals } = parse(rest, { description: { type: 'string' } }, usage);
      const name = one(positionals, 0, usage);
      await createRole(ctx.db, name, values.description ?? null);
      ctx.out(`role ${name} added`);
      return;
    }
    case 'assign': {
      const usage = 'roost role assign ROLE USERNAME';
      const role = rest[0];
      const username = one(rest, 1, usage);
      if (!role) throw new AuthUsageError(`usage: ${usage}`);
      await assignRole(ctx.db, username, role);
      ctx.out(`role ${role} assigned to ${username}`);
      return;
    }
    case 'list': {
      for (const r of await listRoles(ctx.db)) ctx.out(`${r.name}\tdevices:${r.devices}\trules:${r.rules}${r.description ? `\t${r.description}` : ''}`);
      return;
    }
    default:
      throw new AuthUsageError('usage: roost role add|assign|list ...');
  }
}

/** Runs an auth command; false when `args` is not one (the caller tries its own commands). */
export async function runAuthCommand(args: string[], ctx: AuthCommandContext): Promise<boolean> {
  const [command, ...rest] = args;
  switch (command) {
    case 'import-mosquitto':
      await importCommand(rest, ctx);
      return true;
    case 'device':
      await deviceCommand(rest, ctx);
      return true;
    case 'rule':
      await ruleCommand(rest, ctx);
      return true;
    case 'role':
      await roleCommand(rest, ctx);
      return true;
    default:
      return false;
  }
}
