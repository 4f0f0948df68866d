/**
 * Reading another broker's auth tables in a PostgreSQL database, as import accounts:
 *
 * mosquitto-go-auth (postgres backend):
 *   users  (username, password_hash | password, [is_admin | is_superuser], [is_active | enabled])
 *   acls   (username, topic, rw)   rw: 1 read, 2 write, 3 readwrite, 4 subscribe
 *   go-auth's ACL query is `... WHERE username = $1 AND rw >= $2` with acc = 1 (deliver), 2 (publish)
 *   or 4 (subscribe), so a row grants every acc up to its rw. In Roost's terms:
 *     rw >= 4      subscribe, deliver, publish   → readwrite
 *     rw 2 or 3    publish (and deliver)         → write   (no subscribe: 2 and 3 are < 4)
 *     rw 1         deliver only, never subscribe → nothing (delivery under a subscription another
 *                  row allowed is already covered by that row): reported, not imported
 *   Hashes: bcrypt kept as is; go-auth PBKDF2 (PBKDF2$sha512$iter$salt$hash) becomes Mosquitto's
 *   $7$ (the same computation) and PBKDF2$sha256 becomes $pbkdf2$sha256 (auth/emqx.ts).
 *
 * EMQX (PostgreSQL authn/authz): mqtt_user (username, password_hash, salt, is_superuser) and
 *   mqtt_acl (username, permission, action, topic); see auth/emqx.ts for the hash settings.
 */
import pg from 'pg';
import type { Access } from './acl.js';
import { validateUsername } from './admin.js';
import { emqxAccount, emqxRule, type EmqxHashSettings } from './emqx.js';
import { checkRow, ImportError, ImportProblem, type ImportedAccount } from './go-auth-import.js';

/** A table name as a CLI option: schema-qualified at most, never spliced unquoted. */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

function quoteTable(name: string): string {
  if (!TABLE_NAME.test(name)) throw new ImportError([`table name ${JSON.stringify(name)}: letters, digits and _ only, optionally schema.table`]);
  return name.split('.').map((part) => pg.escapeIdentifier(part)).join('.');
}

async function columnsOf(client: pg.Client, table: string): Promise<Set<string>> {
  const [schema, name] = table.includes('.') ? table.split('.') : [null, table];
  const res = await client.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_name = $1 AND ($2::text IS NULL OR table_schema = $2)
        AND ($2::text IS NOT NULL OR table_schema = ANY (current_schemas(false)))`,
    [name, schema],
  );
  if (res.rows.length === 0) throw new ImportError([`table ${table} not found in the source database`]);
  return new Set(res.rows.map((r) => r.column_name));
}

const pick = (columns: Set<string>, names: string[]) => names.find((n) => columns.has(n));

async function withSource<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new ImportError([`cannot connect to the source database: ${(err as Error).message}`]);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** go-auth's rw under `rw >= acc`, as a Roost access (undefined: the row grants nothing Roost needs). */
export function goAuthAccess(rw: number): Access | undefined {
  if (rw >= 4) return 'readwrite';
  if (rw >= 2) return 'write';
  return undefined;
}

/** A go-auth hash as a hash Roost verifies. */
export function goAuthHash(hash: string, saltEncoding: 'base64' | 'utf-8'): string {
  const h = hash.trim();
  if (/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(h)) return h;
  const parts = h.split('$');
  if (parts[0] === 'PBKDF2' && parts.length === 5 && /^[1-9]\d{0,6}$/.test(parts[2])) {
    const [, algorithm, iterations, salt, key] = parts;
    const saltBytes = saltEncoding === 'utf-8' ? Buffer.from(salt, 'utf8') : Buffer.from(salt, 'base64');
    const keyBytes = Buffer.from(key, 'base64');
    if (saltBytes.length === 0 || keyBytes.length < 16) throw new ImportProblem('PBKDF2 hash with an empty salt or a short key');
    if (algorithm === 'sha512') return `$7$${iterations}$${saltBytes.toString('base64')}$${keyBytes.toString('base64')}`;
    if (algorithm === 'sha256') return `$pbkdf2$sha256$${iterations}$${saltBytes.toString('base64')}$${keyBytes.toString('hex')}`;
    throw new ImportProblem(`PBKDF2 with ${algorithm} is not supported (sha256 or sha512)`);
  }
  if (h.startsWith('$argon2')) throw new ImportProblem('argon2id hashes are not supported; reset this password after the import');
  throw new ImportProblem('unknown password hash format (expected bcrypt or go-auth PBKDF2)');
}

export interface SourceRead {
  accounts: ImportedAccount[];
  warnings: string[];
}

export async function readGoAuth(url: string, opts: { usersTable: string; aclsTable: string; saltEncoding: 'base64' | 'utf-8' }): Promise<SourceRead> {
  return withSource(url, async (client) => {
    const users = quoteTable(opts.usersTable);
    const acls = quoteTable(opts.aclsTable);
    const uc = await columnsOf(client, opts.usersTable);
    const hashColumn = pick(uc, ['password_hash', 'password']);
    if (!uc.has('username') || !hashColumn) throw new ImportError([`${opts.usersTable} needs the columns username and password_hash`]);
    const superColumn = pick(uc, ['is_admin', 'is_superuser', 'superuser']);
    const activeColumn = pick(uc, ['is_active', 'enabled', 'active']);
    const userRows = await client.query<{ username: string; hash: string | null; superuser: boolean | null; active: boolean | null }>(
      `SELECT username, ${pg.escapeIdentifier(hashColumn)}::text AS hash,
              ${superColumn ? `${pg.escapeIdentifier(superColumn)}::boolean` : 'false'} AS superuser,
              ${activeColumn ? `${pg.escapeIdentifier(activeColumn)}::boolean` : 'true'} AS active
         FROM ${users} ORDER BY username`,
    );
    const problems: string[] = [];
    const warnings: string[] = [];
    const accounts = new Map<string, ImportedAccount>();
    userRows.rows.forEach((row, i) => {
      const where = `${opts.usersTable} row ${i + 1} (${row.username})`;
      const account = checkRow(problems, where, () => {
        validateUsername(row.username ?? '');
        if (!row.hash) throw new ImportProblem('no password hash');
        return { where, username: row.username, passwordHash: goAuthHash(row.hash, opts.saltEncoding), superuser: row.superuser === true, enabled: row.active !== false, rules: [] };
      });
      if (account) accounts.set(account.username, account);
    });

    const ac = await columnsOf(client, opts.aclsTable);
    if (!ac.has('username') || !ac.has('topic') || !ac.has('rw')) throw new ImportError([`${opts.aclsTable} needs the columns username, topic and rw`]);
    const aclRows = await client.query<{ username: string; topic: string | null; rw: string | null }>(
      `SELECT username, topic, rw::text AS rw FROM ${acls} ORDER BY username, topic, rw`,
    );
    let readOnly = 0;
    aclRows.rows.forEach((row, i) => {
      const where = `${opts.aclsTable} row ${i + 1} (${row.username} ${row.topic} rw=${row.rw})`;
      checkRow(problems, where, () => {
        if (!row.topic) throw new ImportProblem('no topic');
        if (row.rw === null || !/^-?\d+$/.test(row.rw)) throw new ImportProblem('rw is not a number');
        const access = goAuthAccess(Number(row.rw));
        const account = accounts.get(row.username);
        if (!account) {
          if (!userRows.rows.some((u) => u.username === row.username)) warnings.push(`${where}: no such user; skipped`);
          return;
        }
        if (!access) {
          readOnly++;
          return;
        }
        account.rules.push({ pattern: row.topic, access, effect: 'allow' });
      });
    });
    if (readOnly > 0) warnings.push(`${readOnly} ACL row(s) with rw < 2 grant no publish and no subscribe under rw >= acc; not imported`);
    if (problems.length > 0) throw new ImportError(problems);
    return { accounts: [...accounts.values()], warnings };
  });
}

export async function readEmqxTables(url: string, opts: { usersTable: string; aclTable?: string; hash: EmqxHashSettings }): Promise<SourceRead> {
  return withSource(url, async (client) => {
    const uc = await columnsOf(client, opts.usersTable);
    if (!uc.has('username') || !uc.has('password_hash')) throw new ImportError([`${opts.usersTable} needs the columns username and password_hash`]);
    const rows = await client.query<{ username: string; password_hash: string; salt: string | null; is_superuser: boolean | null }>(
      `SELECT username, password_hash::text AS password_hash, ${uc.has('salt') ? 'salt::text' : 'NULL::text'} AS salt,
              ${uc.has('is_superuser') ? 'is_superuser::boolean' : 'false'} AS is_superuser
         FROM ${quoteTable(opts.usersTable)} ORDER BY username`,
    );
    const problems: string[] = [];
    const accounts = new Map<string, ImportedAccount>();
    rows.rows.forEach((row, i) => {
      const where = `${opts.usersTable} row ${i + 1} (${row.username})`;
      const a = checkRow(problems, where, () => emqxAccount({ user_id: row.username, password_hash: row.password_hash, salt: row.salt, is_superuser: row.is_superuser }, where, opts.hash));
      if (a) accounts.set(a.username, a);
    });
    const warnings: string[] = [];
    if (opts.aclTable) {
      const ac = await columnsOf(client, opts.aclTable);
      if (!['username', 'permission', 'action', 'topic'].every((c) => ac.has(c))) throw new ImportError([`${opts.aclTable} needs the columns username, permission, action and topic`]);
      const acl = await client.query<{ username: string; permission: string; action: string; topic: string }>(
        `SELECT username, permission, action, topic FROM ${quoteTable(opts.aclTable)} ORDER BY username, ${ac.has('id') ? 'id' : 'topic'}`,
      );
      acl.rows.forEach((row, i) => {
        const where = `${opts.aclTable} row ${i + 1} (${row.username} ${row.permission} ${row.action} ${row.topic})`;
        const rule = checkRow(problems, where, () => emqxRule(row));
        if (!rule) return;
        const a = accounts.get(row.username);
        if (a) a.rules.push(rule);
        else if (!rows.rows.some((u) => u.username === row.username)) warnings.push(`${where}: no such user; skipped`);
      });
      warnings.push('EMQX applies the first matching rule; Roost applies a matching deny over any allow (check rules where an allow comes before an overlapping deny)');
    }
    if (problems.length > 0) throw new ImportError(problems);
    return { accounts: [...accounts.values()], warnings };
  });
}
