#!/usr/bin/env node
// Development certificates for Roost's TLS and WSS listeners: a CA and a server certificate
// signed by it, with SANs for localhost and 127.0.0.1. Uses the system's openssl.
// Usage: npm run certs [-- OUT_DIR]   (default certs/out, git-ignored; private keys never committed)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, 'out'));
mkdirSync(out, { recursive: true, mode: 0o700 });
const file = (name) => path.join(out, name);
const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

if (!existsSync(file('ca.key'))) {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650',
    '-subj', '/CN=Roost development CA', '-keyout', file('ca.key'), '-out', file('ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}
writeFileSync(file('server.ext'), [
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
].join('\n') + '\n');
openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost',
  '-keyout', file('server.key'), '-out', file('server.csr'));
openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
  '-days', '825', '-extfile', file('server.ext'), '-out', file('server.crt'));

process.stdout.write(`Development certificates written to ${out}
Start Roost with TLS (8883) and WSS (8081):
  ROOST_TLS_CERT=${file('server.crt')} ROOST_TLS_KEY=${file('server.key')} npm start
Point clients at the CA:
  mosquitto_sub -h localhost -p 8883 --cafile ${file('ca.crt')} -t '#' -u USER -P PASS
  mqtt.connect('mqtts://localhost:8883', { ca: fs.readFileSync('${file('ca.crt')}') })
`);
