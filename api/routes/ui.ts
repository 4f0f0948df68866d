/**
 * The admin dashboard at /ui/ (built by ui/build.mjs into dist/dashboard/) and, beside it, the
 * MQTT.js browser build at /ui/mqtt.min.js for pages of your own. The files are read once at
 * start-up and served from memory with an ETag; `/` redirects to the dashboard.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { ApiErrors } from '../errors.js';

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

// The dashboard talks to this API and to the broker's WebSocket listeners (another port); nothing else.
const CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** dist/dashboard of this checkout, whether this file runs from dist/api/routes or from api/routes (tests). */
export function dashboardDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.join(dir, 'dist', 'dashboard');
}

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (!type) continue;
    const body = readFileSync(path.join(dir, name));
    assets.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

const uiRoutes: FastifyPluginAsync = async (app) => {
  const assets = loadAssets(dashboardDir());

  const send = (reply: FastifyReply, name: string, ifNoneMatch: string | undefined) => {
    const asset = assets.get(name);
    if (!asset) {
      if (assets.size === 0) throw new ApiErrors.notFound('Dashboard build (npm run build)');
      throw new ApiErrors.notFound(`/ui/${name}`);
    }
    reply.header('etag', asset.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    if (name.endsWith('.html')) reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
    if (ifNoneMatch === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  };

  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ui/'));
  app.get('/ui', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ui/'));

  app.get('/ui/', {
    schema: { tags: ['dashboard'], description: 'The admin dashboard (log in with an API token).' },
  }, async (req, reply) => send(reply, 'index.html', req.headers['if-none-match']));

  app.get<{ Params: { file: string } }>('/ui/:file', {
    schema: {
      tags: ['dashboard'],
      description: 'Dashboard assets; /ui/mqtt.min.js is the MQTT.js browser build (global `mqtt`) for your own pages.',
      params: { type: 'object', properties: { file: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*$', maxLength: 100 } } },
    },
  }, async (req, reply) => send(reply, req.params.file, req.headers['if-none-match']));
};

export default uiRoutes;
