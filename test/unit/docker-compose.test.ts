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

describe('docker-compose.yml (the production shape)', () => {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };

  it('runs roost, postgres and redis, each with a healthcheck', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['postgres', 'redis', 'roost']);
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.healthcheck?.test, `${name} healthcheck`).toBeTruthy();
    }
  });

  it('starts roost only after healthy storage and points it at both', () => {
    const roost = compose.services.roost;
    expect(roost.build).toBe('.');
    expect(roost.depends_on).toEqual({ postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect(roost.environment?.DATABASE_URL).toMatch(/^postgres:\/\/roost:.*@postgres:5432\/roost$/);
    expect(roost.environment?.REDIS_URL).toBe('redis://redis:6379');
    for (const name of Object.keys(roost.environment ?? {})) expect(SETTINGS).toHaveProperty(name);
  });

  it('publishes the four MQTT ports and the API, and keeps data in named volumes', () => {
    expect(compose.services.roost.ports).toEqual(['1883:1883', '8883:8883', '8080:8080', '8081:8081', '3000:3000']);
    expect(compose.services.postgres.volumes).toEqual(['pgdata:/var/lib/postgresql/data']);
    expect(compose.services.redis.volumes).toEqual(['redisdata:/data']);
    expect(Object.keys(compose.volumes).sort()).toEqual(['pgdata', 'redisdata']);
  });
});
