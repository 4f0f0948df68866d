import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SETTINGS } from '../../lib/config.js';

interface Service {
  build?: unknown;
  image?: string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: unknown };
  depends_on?: Record<string, { condition: string }>;
}

describe('docker-compose.yml (the production shape: two nodes behind HAProxy)', () => {
  // Docker Compose resolves YAML merge keys (<<: *roost); so does this parse.
  const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const nodes = ['roost-1', 'roost-2'];

  it('runs two roost nodes, postgres, redis and haproxy; nodes and storage have healthchecks', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['haproxy', 'postgres', 'redis', 'roost-1', 'roost-2']);
    for (const name of [...nodes, 'postgres', 'redis']) expect(compose.services[name].healthcheck?.test, `${name} healthcheck`).toBeTruthy();
  });

  it('points each node at both stores under its own stable node id, with known settings only', () => {
    for (const name of nodes) {
      const node = compose.services[name];
      expect(node.build).toBe('.');
      expect(node.environment?.DATABASE_URL).toMatch(/^postgres:\/\/roost:.*@postgres:5432\/roost$/);
      expect(node.environment?.REDIS_URL).toBe('redis://redis:6379');
      expect(node.environment?.ROOST_NODE_ID).toBe(name);
      // An unset address would mean loopback-only: unreachable from HAProxy.
      expect(node.environment?.ROOST_HOST, `${name} ROOST_HOST`).toBe('0.0.0.0');
      expect(node.environment?.ROOST_API_HOST, `${name} ROOST_API_HOST`).toBe('0.0.0.0');
      for (const setting of Object.keys(node.environment ?? {})) expect(SETTINGS).toHaveProperty(setting);
      expect(node.ports, `${name} is reached through haproxy only`).toBeUndefined();
      // HAProxy's PROXY headers are read only from trusted addresses: Docker's private ranges.
      expect(node.environment?.ROOST_TRUSTED_PROXIES, `${name} ROOST_TRUSTED_PROXIES`).toBe('10.0.0.0/8,172.16.0.0/12,192.168.0.0/16');
    }
  });

  it('starts the first node after healthy storage and the second after the first (one migration, one first token)', () => {
    expect(compose.services['roost-1'].depends_on).toEqual({ postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect(compose.services['roost-2'].depends_on).toEqual({ 'roost-1': { condition: 'service_healthy' } });
  });

  it('publishes the four MQTT ports and the API on haproxy, with the repo’s config mounted', () => {
    const haproxy = compose.services.haproxy;
    expect(haproxy.ports).toEqual(['1883:1883', '8883:8883', '8080:8080', '8081:8081', '3000:3000']);
    expect(haproxy.volumes).toEqual(['./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro']);
  });

  it('keeps data in named volumes, Redis with its append-only file', () => {
    expect(compose.services.postgres.volumes).toEqual(['pgdata:/var/lib/postgresql/data']);
    expect(compose.services.redis.volumes).toEqual(['redisdata:/data']);
    expect(JSON.stringify((compose.services.redis as { command?: unknown }).command)).toContain('--appendonly');
    expect(Object.keys(compose.volumes).sort()).toEqual(['pgdata', 'redisdata']);
  });

  it('builds an image that listens on every interface (not the loopback-only default)', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(dockerfile).toMatch(/^ENV ROOST_HOST=0\.0\.0\.0 ROOST_API_HOST=0\.0\.0\.0$/m);
    // Every folder tsconfig.json compiles is copied into the build stage.
    const tsconfig = JSON.parse(readFileSync('tsconfig.json', 'utf8')) as { include: string[] };
    for (const folder of tsconfig.include.map((glob) => glob.split('/')[0])) expect(dockerfile).toContain(`COPY ${folder} ${folder}`);
  });

  it('has an HAProxy server line for every node and listener port', () => {
    const cfg = readFileSync('deploy/haproxy.cfg', 'utf8');
    for (const name of nodes) {
      for (const port of [1883, 8883, 8080, 8081, 3000]) expect(cfg).toMatch(new RegExp(`^\\s+server ${name} ${name}:${port} check`, 'm'));
    }
    for (const port of [1883, 8883, 8080, 8081, 3000]) expect(cfg).toMatch(new RegExp(`^\\s+bind :${port}$`, 'm'));
  });

  it('sends the PROXY protocol to every MQTT listener and X-Forwarded-For to the API', () => {
    const cfg = readFileSync('deploy/haproxy.cfg', 'utf8');
    for (const name of nodes) {
      for (const port of [1883, 8883, 8080, 8081]) expect(cfg).toMatch(new RegExp(`^\\s+server ${name} ${name}:${port} check port 3000 send-proxy-v2$`, 'm'));
    }
    expect(cfg).toMatch(/^backend api\n(?:\s+.*\n)*?\s+option forwardfor$/m);
  });
});
