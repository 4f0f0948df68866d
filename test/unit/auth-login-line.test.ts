import { describe, expect, it } from 'vitest';
import { isAuthError } from '../../auth/errors.js';
import { LoginLine } from '../../auth/login-line.js';

const settled = () => new Promise((r) => setImmediate(r));

describe('LoginLine', () => {
  it('lets `inFlight` logins of one address go at once and the next wait their turn, in order', async () => {
    const line = new LoginLine({ inFlight: 2, waiting: 10 });
    const order: string[] = [];
    const enter = (name: string) => line.enter('10.0.0.1').then((release) => (order.push(name), release));
    const first = await enter('a');
    const second = await enter('b');
    const third = enter('c');
    const fourth = enter('d');
    await settled();
    expect(order).toEqual(['a', 'b']);
    first();
    await settled();
    expect(order).toEqual(['a', 'b', 'c']);
    second();
    (await third)();
    (await fourth)();
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(line.addresses).toBe(0);
  });

  it('does not hold up another address while one address has its line full', async () => {
    const line = new LoginLine({ inFlight: 1, waiting: 1 });
    const held = await line.enter('10.0.0.1');
    const waiting = line.enter('10.0.0.1');
    const other = await line.enter('10.0.0.2');
    other();
    held();
    (await waiting)();
  });

  it('refuses at once (ROOST_ERR_AUTH_BUSY) beyond the waiting bound, and again admits once the line moves', async () => {
    const line = new LoginLine({ inFlight: 1, waiting: 1 });
    const held = await line.enter('10.0.0.1');
    const waiting = line.enter('10.0.0.1');
    const refused = await line.enter('10.0.0.1').then(() => undefined, (err: unknown) => err);
    expect(isAuthError(refused, 'ROOST_ERR_AUTH_BUSY')).toBe(true);
    held();
    held(); // a second release of the same place changes nothing
    const next = line.enter('10.0.0.1');
    (await waiting)();
    (await next)();
    expect(line.addresses).toBe(0);
  });

  it('bounds nothing with inFlight 0', async () => {
    const line = new LoginLine({ inFlight: 0, waiting: 0 });
    const releases = await Promise.all(Array.from({ length: 100 }, () => line.enter('10.0.0.1')));
    releases.forEach((r) => r());
    expect(line.addresses).toBe(0);
  });
});
