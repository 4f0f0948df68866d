/**
 * POST /api/commands: how `roost` reaches the Roost that holds the embedded data folder. It runs
 * the command in that process, reads only the file contents the CLI sent, and is admin-only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, connectClient, startTestRoost, type TestRoost } from '../helpers/roost.js';

let t: TestRoost;
beforeAll(async () => {
  t = await startTestRoost('pglite');
});
afterAll(async () => t?.stop());

describe('POST /api/commands', () => {
  it('runs a device command with the password file the CLI sent; the device logs in at once', async () => {
    const res = await api(t, 'POST', '/api/commands', {
      args: ['device', 'add', 'cmd-dev', '--password-file', 'pw.txt'],
      files: { 'pw.txt': { text: 'from-the-file\nsecond line is ignored\n' } },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ output: ['device cmd-dev added'] });
    const client = await connectClient(t, 'mqtt', { username: 'cmd-dev', password: 'from-the-file' });
    client.end(true);
    const audit = await api(t, 'GET', '/api/audit?action=command.run');
    expect(JSON.stringify(audit.body)).toContain('device add');
    expect(JSON.stringify(audit.body)).not.toContain('pw.txt');
  });

  it('never opens a path it is given: a file the CLI did not send cannot be read, even one that exists here', async () => {
    const res = await api(t, 'POST', '/api/commands', { args: ['device', 'add', 'snoop', '--password-file', '/etc/hostname'] });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'ROOST_ERR_MOSQUITTO_FILE', message: 'Cannot read the Mosquitto file: cannot read password file /etc/hostname: ENOENT' });
    const list = await api(t, 'POST', '/api/commands', { args: ['device', 'list'] });
    expect(list.body.output.join('\n')).not.toContain('snoop');
  });

  it('answers 400 with the usage line for what is not a data command', async () => {
    const res = await api(t, 'POST', '/api/commands', { args: ['start'] });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('ROOST_ERR_USAGE');
    expect(res.body.message).toMatch(/^unknown command "start"/);
  });

  it('refuses a viewer and a request without a token', async () => {
    const viewer = (await api(t, 'POST', '/api/tokens', { name: 'cmd-viewer', role: 'viewer' })).body.token;
    expect((await api(t, 'POST', '/api/commands', { args: ['token', 'create', '--name', 'x'] }, viewer)).status).toBe(403);
    expect((await api(t, 'POST', '/api/commands', { args: ['token', 'create', '--name', 'x'] }, null)).status).toBe(401);
  });
});
