/** broker/shared-subscriptions.ts: share names (MQTT 5.0 4.8.2) and the members of each group across nodes. */
import { describe, expect, it } from 'vitest';
import { MEMBERS_STALE_MS, ShareGroups, parseShare } from '../../broker/shared-subscriptions.js';

describe('parseShare', () => {
  it('takes $share/{group}/{filter} apart; a plain filter is none; a malformed one is invalid (MQTT-4.8.2-1/2)', () => {
    expect(parseShare('$share/workers/jobs/#')).toEqual({ group: 'workers', filter: 'jobs/#' });
    expect(parseShare('$share/g//x')).toEqual({ group: 'g', filter: '/x' });
    expect(parseShare('jobs/#')).toBeUndefined();
    expect(parseShare('$SYS/#')).toBeUndefined();
    for (const bad of ['$share/g', '$share/g/', '$share//x', '$share/+/x', '$share/a#/x']) expect(parseShare(bad)).toBe('invalid');
  });
});

describe('ShareGroups', () => {
  it('gives each group its members in turns, in one order on every node (node, then client id)', () => {
    const a = new ShareGroups('node-a');
    a.addLocal('$share/g/t', 'x', 1);
    a.heard('node-b', [['$share/g/t', 'y', 1], ['$share/h/t', 'z', 0]]);
    expect([1, 2, 3, 4].map(() => a.choose('$share/g/t')?.clientId)).toEqual(['x', 'y', 'x', 'y']);
    expect(a.choose('$share/h/t')).toEqual({ node: 'node-b', clientId: 'z', qos: 0, online: true });
    expect(a.choose('$share/none/t')).toBeUndefined();
    expect(a.keys().sort()).toEqual(['$share/g/t', '$share/h/t']);
  });

  it('skips the clients asked to while another remains; none left is undefined', () => {
    const a = new ShareGroups('node-a');
    a.addLocal('$share/g/t', 'x', 1);
    a.addLocal('$share/g/t', 'y', 1);
    expect(a.choose('$share/g/t', new Set(['x']))?.clientId).toBe('y');
    expect(a.choose('$share/g/t', new Set(['x']))?.clientId).toBe('y');
    expect(a.choose('$share/g/t', new Set(['x', 'y']))).toBeUndefined();
  });

  it('a member removed, a node not heard from in MEMBERS_STALE_MS, a node forgotten: their members leave', () => {
    const a = new ShareGroups('node-a');
    a.addLocal('$share/g/t', 'x', 1);
    a.heard('node-b', [['$share/g/t', 'y', 2]], 1000);
    a.heard('node-c', [['$share/g/t', 'w', 2]], 1000 + MEMBERS_STALE_MS);
    expect(a.expire(1000 + MEMBERS_STALE_MS + 1)).toEqual(['node-b']);
    a.forget('node-c');
    expect([1, 2].map(() => a.choose('$share/g/t')?.clientId)).toEqual(['x', 'x']);
    a.removeLocal('$share/g/t', 'x');
    expect(a.choose('$share/g/t')).toBeUndefined();
    expect(a.announcement()).toEqual([]);
  });

  it('an offline member (persistent session) is chosen only while no member is connected; dropped, it is none', () => {
    const a = new ShareGroups('node-a');
    a.addLocal('$share/g/t', 'p', 1);
    a.addLocal('$share/g/t', 'q', 1);
    a.setOffline('$share/g/t', 'p');
    a.heard('node-b', [['$share/g/t', 'r', 1, 1]]);
    expect([1, 2, 3].map(() => a.choose('$share/g/t')?.clientId)).toEqual(['q', 'q', 'q']);
    a.removeLocal('$share/g/t', 'q');
    expect([1, 2, 3, 4].map(() => a.choose('$share/g/t')).map((m) => `${m?.clientId}:${m?.online}`)).toEqual(['p:false', 'r:false', 'p:false', 'r:false']);
    expect(a.announcement()).toEqual([['$share/g/t', 'p', 1, 1]]);
    expect(a.dropOffline('q')).toBe(false);
    expect(a.dropOffline('p')).toBe(true);
    a.forget('node-b');
    expect(a.choose('$share/g/t')).toBeUndefined();
    a.addLocal('$share/g/t', 'p', 2);
    expect(a.dropOffline('p')).toBe(false); // online again: not an offline membership
    expect(a.choose('$share/g/t')).toEqual({ node: 'node-a', clientId: 'p', qos: 2, online: true });
  });

  it('its own announcements are not taken as another node\'s', () => {
    const a = new ShareGroups('node-a');
    a.heard('node-a', [['$share/g/t', 'ghost', 1]]);
    expect(a.choose('$share/g/t')).toBeUndefined();
  });
});
