/**
 * Writes accounts read from another broker's auth store (mosquitto-go-auth tables, EMQX) into
 * Roost devices and rules, all or nothing:
 *   - every row is checked first; any bad row stops the import with one line per bad row, and
 *     nothing is written;
 *   - one transaction; a dry run does all of it and rolls back, so its report is exact;
 *   - idempotent: a device already present keeps its password and settings, a rule already
 *     present (same pattern, access, effect) is not added again.
 */
import type { Db } from '../lib/db/index.js';
import type { Access, Effect } from './acl.js';
import { addRule, createDevice, listRules, validatePattern, validateUsername } from './admin.js';
import { hashKind } from './credentials.js';
import { isAuthError } from './errors.js';

/** What is wrong with one row (the importer adds where the row is). */
export class ImportProblem extends Error {}

/** An import refused as a whole: `problems` has one line per bad row. */
export class ImportError extends Error {
  readonly code = 'ROOST_ERR_IMPORT';
  constructor(readonly problems: string[]) {
    super(`nothing imported: ${problems.length} bad row${problems.length === 1 ? '' : 's'}\n  ${problems.join('\n  ')}`);
  }
}

export interface ImportedRule {
  pattern: string;
  access: Access;
  effect: Effect;
}

export interface ImportedAccount {
  /** Where the row came from, for messages: "mqtt_users row 3". */
  where: string;
  username: string;
  passwordHash: string;
  superuser: boolean;
  enabled: boolean;
  rules: ImportedRule[];
}

export interface AccountImportReport {
  dryRun: boolean;
  devicesCreated: string[];
  devicesKept: string[];
  rulesAdded: number;
  rulesSkipped: number;
  /** Password hashes by kind among the created devices (bcrypt kept; others upgraded at first login). */
  hashes: Record<string, number>;
  warnings: string[];
}

class DryRunRollback extends Error {}

/** Runs fn for a row; an ImportProblem (or a validation AuthError) becomes a line of `problems`. */
export function checkRow<T>(problems: string[], where: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ImportProblem || isAuthError(err)) {
      problems.push(`${where}: ${err.message}`);
      return undefined;
    }
    throw err;
  }
}

export function validateAccounts(accounts: ImportedAccount[], problems: string[]): void {
  const seen = new Map<string, string>();
  for (const a of accounts) {
    checkRow(problems, a.where, () => {
      validateUsername(a.username);
      if (seen.has(a.username)) throw new ImportProblem(`user ${a.username} is also at ${seen.get(a.username)}`);
      seen.set(a.username, a.where);
      if (!hashKind(a.passwordHash)) throw new ImportProblem(`the password hash of ${a.username} is in no format Roost can verify`);
      for (const r of a.rules) validatePattern(r.pattern);
    });
  }
}

export async function importAccounts(db: Db, accounts: ImportedAccount[], opts: { source: string; dryRun: boolean; warnings?: string[] }): Promise<AccountImportReport> {
  const problems: string[] = [];
  validateAccounts(accounts, problems);
  if (problems.length > 0) throw new ImportError(problems);
  const report: AccountImportReport = {
    dryRun: opts.dryRun,
    devicesCreated: [],
    devicesKept: [],
    rulesAdded: 0,
    rulesSkipped: 0,
    hashes: {},
    warnings: [...(opts.warnings ?? [])],
  };
  try {
    await db.transaction(async (tx) => {
      const existing = new Set((await tx.query<{ username: string }>('SELECT username FROM devices')).rows.map((r) => r.username));
      for (const a of accounts) {
        if (existing.has(a.username)) {
          report.devicesKept.push(a.username);
        } else {
          await createDevice(tx, { username: a.username, passwordHash: a.passwordHash, superuser: a.superuser, enabled: a.enabled, type: opts.source });
          report.devicesCreated.push(a.username);
          const kind = hashKind(a.passwordHash) as string;
          report.hashes[kind] = (report.hashes[kind] ?? 0) + 1;
        }
        if (a.rules.length === 0) continue;
        const present = await listRules(tx, { device: a.username });
        for (const r of a.rules) {
          if (present.some((p) => p.pattern === r.pattern && p.access === r.access && p.effect === r.effect)) {
            report.rulesSkipped++;
            continue;
          }
          present.push(await addRule(tx, { device: a.username, ...r }));
          report.rulesAdded++;
        }
      }
      if (opts.dryRun) throw new DryRunRollback();
    });
  } catch (err) {
    if (!(err instanceof DryRunRollback)) throw err;
  }
  return report;
}
