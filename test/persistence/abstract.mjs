/**
 * The conformance suite every Aedes persistence must pass (aedes-persistence/abstract.js), run
 * against the compiled SQL persistence (dist/, `npx tsc -p .` first) on one database backend:
 *
 *   ROOST_TEST_BACKEND=postgres ROOST_TEST_DATABASE_URL=postgres://... node --test test/persistence/abstract.mjs
 *   ROOST_TEST_BACKEND=pglite node --test test/persistence/abstract.mjs
 *
 * The suite runs twice. The second time the persistence reloads its whole state from the database
 * after every change, so each assertion reads what the tables hold rather than the memory index:
 * a process started on the same database would see exactly the same.
 */
import { after, test } from 'node:test';
import { createRequire } from 'node:module';
import { openDb } from '../../dist/lib/db/index.js';
import { migrate } from '../../dist/lib/db/migrate.js';
import { createSqlPersistence } from '../../dist/broker/persistence/sql-persistence.js';

const require = createRequire(import.meta.url);
const abs = require('aedes-persistence/abstract.js');

const backend = process.env.ROOST_TEST_BACKEND ?? 'pglite';
const databaseUrl = process.env.ROOST_TEST_DATABASE_URL;
if (backend === 'postgres' && !databaseUrl) throw new Error('ROOST_TEST_DATABASE_URL is required for ROOST_TEST_BACKEND=postgres');
if (backend !== 'postgres' && backend !== 'pglite') throw new Error(`ROOST_TEST_BACKEND must be postgres or pglite, not ${backend}`);

// One database for the whole run (PGlite takes seconds to open); emptied before each test.
const db = await openDb(backend === 'postgres' ? { databaseUrl, dataDir: 'memory://' } : { dataDir: 'memory://' });
await migrate(db);
after(() => db.close());

const TABLES = 'retained_messages, session_subscriptions, session_outgoing, session_incoming, session_wills';
const silentLog = { warn() {}, error() {} };

async function emptyPersistence() {
  await db.exec(`TRUNCATE ${TABLES}`);
  return createSqlPersistence(db, { log: silentLog });
}

const MUTATORS = new Set([
  'storeRetained', 'addSubscriptions', 'removeSubscriptions', 'cleanSubscriptions',
  'outgoingEnqueue', 'outgoingEnqueueCombi', 'outgoingUpdate', 'outgoingClearMessageId',
  'incomingStorePacket', 'incomingDelPacket', 'cleanIncoming', 'putWill', 'delWill',
]);

/** The same persistence, but every change is followed by a reload of all state from the tables. */
function reloadingAfterEachChange(persistence) {
  return new Proxy(persistence, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (!MUTATORS.has(prop)) return value.bind(target);
      return async (...args) => {
        const result = await value.apply(target, args);
        await target.reload();
        return result;
      };
    },
  });
}

abs({ test, persistence: emptyPersistence, testAsync: true });

abs({
  test: (name, fn) => test(`reloaded from the database: ${name}`, fn),
  persistence: async () => reloadingAfterEachChange(await emptyPersistence()),
  testAsync: true,
});
