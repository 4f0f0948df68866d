/**
 * The embedded PostgreSQL runs here, in a worker thread, so its WebAssembly work does not stop the
 * broker's event loop (on two cores the broker and the database then run side by side).
 * Requests arrive in order and are answered in order; see pglite.ts for the other side.
 */
import { writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { Transaction } from '@electric-sql/pglite';
import { PGLITE_THREAD_NAME } from './pglite.js';
import { createPglite, type PgliteSettings } from './pglite-open.js';

export type Request =
  | { id: number; op: 'query'; sql: string; params?: unknown[]; tx?: number }
  | { id: number; op: 'exec'; sql: string; tx?: number }
  | { id: number; op: 'copy'; sql: string; data: Uint8Array<ArrayBuffer> }
  | { id: number; op: 'begin'; tx: number }
  | { id: number; op: 'commit' | 'rollback'; tx: number }
  | { id: number; op: 'listen' | 'unlisten'; channel: string }
  | { id: number; op: 'close' };

export type Reply =
  | { id: number; ok: true; rows?: unknown[]; rowCount?: number }
  | { id: number; ok: false; message: string; code?: string }
  | { notify: string; payload: string };

// The thread's name in `top -H` and `ps -L`, so the database's CPU can be told from the broker's
// (and pinned on its own: bench/targets.ts). Linux only; elsewhere the name stays as it was.
try {
  writeFileSync('/proc/thread-self/comm', PGLITE_THREAD_NAME);
} catch {
  // not Linux: nothing to name
}

const port = parentPort!;
const db = await createPglite(workerData as PgliteSettings);

interface OpenTx {
  tx: Transaction;
  finish: (action: 'commit' | 'rollback') => void;
  /** Settles once the COMMIT (or ROLLBACK) has run. */
  done: Promise<void>;
}
const transactions = new Map<number, OpenTx>();
const unlisteners = new Map<string, () => Promise<void>>();

function reply(message: Reply): void {
  port.postMessage(message);
}

async function handle(req: Request): Promise<void> {
  switch (req.op) {
    case 'query': {
      const conn = req.tx === undefined ? db : transactions.get(req.tx)!.tx;
      const res = await conn.query(req.sql, req.params);
      return reply({ id: req.id, ok: true, rows: res.rows, rowCount: res.affectedRows ?? res.rows.length });
    }
    case 'copy': {
      const res = await db.query(req.sql, [], { blob: new Blob([req.data]) });
      return reply({ id: req.id, ok: true, rowCount: res.affectedRows ?? 0 });
    }
    case 'exec': {
      const conn = req.tx === undefined ? db : transactions.get(req.tx)!.tx;
      await conn.exec(req.sql);
      return reply({ id: req.id, ok: true });
    }
    case 'begin': {
      // The transaction stays open until 'commit' or 'rollback' for it arrives.
      let opened!: (open: Omit<OpenTx, 'done'>) => void;
      const ready = new Promise<Omit<OpenTx, 'done'>>((resolve) => (opened = resolve));
      const done = db.transaction(async (tx) => {
        const action = await new Promise<'commit' | 'rollback'>((finish) => opened({ tx, finish }));
        if (action === 'rollback') await tx.rollback();
      });
      done.catch(() => {}); // a failed COMMIT is answered to 'commit', below
      transactions.set(req.tx, { ...(await ready), done });
      return reply({ id: req.id, ok: true });
    }
    case 'commit':
    case 'rollback': {
      const open = transactions.get(req.tx);
      transactions.delete(req.tx);
      open?.finish(req.op);
      // Answered once committed (and flushed): the caller may then tell someone it is stored.
      if (req.op === 'commit') await open?.done;
      else await open?.done.catch(() => {});
      return reply({ id: req.id, ok: true });
    }
    case 'listen': {
      if (!unlisteners.has(req.channel)) {
        unlisteners.set(req.channel, await db.listen(req.channel, (payload) => reply({ notify: req.channel, payload })));
      }
      return reply({ id: req.id, ok: true });
    }
    case 'unlisten': {
      await unlisteners.get(req.channel)?.();
      unlisteners.delete(req.channel);
      return reply({ id: req.id, ok: true });
    }
    case 'close': {
      await db.close();
      reply({ id: req.id, ok: true });
      port.close();
      return;
    }
  }
}

port.on('message', (req: Request) => {
  handle(req).catch((err: { message?: string; code?: string }) => reply({ id: req.id, ok: false, message: err?.message ?? String(err), code: err?.code }));
});
port.postMessage({ id: 0, ok: true });
