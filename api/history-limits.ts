/**
 * Bounds on the message-history API (issue 22 #16): requests per token and route per minute
 * (ROOST_API_HISTORY_RATE_PER_MIN, through @fastify/rate-limit), and each query's time
 * (ROOST_API_QUERY_TIMEOUT_MS, PostgreSQL's statement_timeout for that query only).
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../lib/config.js';
import type { Db } from '../lib/db/index.js';
import { bearerToken } from './auth.js';
import { ApiErrors } from './errors.js';

/** Route config: history requests counted per route and API token (per address without one). */
export function historyRateLimit(config: Config) {
  return {
    rateLimit: {
      max: config.ROOST_API_HISTORY_RATE_PER_MIN,
      timeWindow: '1 minute',
      keyGenerator: (req: FastifyRequest) => {
        const token = bearerToken(req);
        return token ? 'token:' + createHash('sha256').update(token).digest('hex') : 'ip:' + req.ip;
      },
    },
  };
}

/** Runs one query with statement_timeout set for it alone; a cancelled one is ROOST_ERR_QUERY_TIMEOUT. */
export async function boundedQuery<R = Record<string, unknown>>(db: Db, timeoutMs: number, sql: string, params: unknown[]): Promise<{ rows: R[] }> {
  if (timeoutMs === 0) return db.query<R>(sql, params);
  try {
    return await db.transaction(async (tx) => {
      await tx.query("SELECT set_config('statement_timeout', $1, true)", [String(timeoutMs)]);
      return tx.query<R>(sql, params);
    });
  } catch (e) {
    // 57014 query_canceled: the statement_timeout fired.
    if ((e as { code?: unknown }).code === '57014') throw new ApiErrors.queryTimeout(timeoutMs);
    throw e;
  }
}
