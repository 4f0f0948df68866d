#!/usr/bin/env node
// Builds the dashboard into dist/dashboard/: ui/src bundled and minified by esbuild (one app.js),
// index.html and app.css copied, and the MQTT.js browser build copied beside them as mqtt.min.js.
// Run by `npm run build`; no CDN, no network.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '..', 'dist', 'dashboard');
const require = createRequire(import.meta.url);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [path.join(here, 'src', 'main.ts')],
  outfile: path.join(out, 'app.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(path.join(here, 'index.html'), path.join(out, 'index.html'));
copyFileSync(path.join(here, 'app.css'), path.join(out, 'app.css'));
copyFileSync(path.join(path.dirname(require.resolve('mqtt/package.json')), 'dist', 'mqtt.min.js'), path.join(out, 'mqtt.min.js'));
