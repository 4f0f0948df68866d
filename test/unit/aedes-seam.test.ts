/**
 * Issue 20, step 1: broker/aedes/ is the only code that imports or touches Aedes, mqemitter,
 * mqtt-packet, aedes-packet or bl; everything else registers named steps with broker/core.ts.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StepList } from '../../broker/core.js';

const SEAM_PACKAGES = ['aedes', 'mqemitter', 'mqtt-packet', 'aedes-packet', 'bl'];
const SOURCE_ROOTS = ['server', 'cli', 'broker', 'api', 'auth', 'lib', 'webhooks'];

function sourceFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return sourceFiles(file);
    return file.endsWith('.ts') ? [file] : [];
  });
}

/** The packages a file imports (static, dynamic and side-effect imports, and require()). */
function importedPackages(text: string): string[] {
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+|require\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]);
  return specifiers.filter((s) => !s.startsWith('.') && !s.startsWith('node:')).map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]));
}

describe('the Aedes seam', () => {
  it('no file outside broker/aedes/ imports aedes, mqemitter, mqtt-packet, aedes-packet or bl', () => {
    const files = SOURCE_ROOTS.flatMap(sourceFiles);
    expect(files.length).toBeGreaterThan(50);
    const offenders = files
      .filter((file) => !file.startsWith(`broker${path.sep}aedes${path.sep}`))
      .flatMap((file) => importedPackages(readFileSync(file, 'utf8')).filter((p) => SEAM_PACKAGES.includes(p)).map((p) => `${file} imports ${p}`));
    expect(offenders).toEqual([]);
  });

  it('the seam itself does import Aedes (the scan above would notice an import it cannot read)', () => {
    expect(importedPackages(readFileSync('broker/aedes/core.ts', 'utf8'))).toContain('aedes');
  });

  it('runs steps in the order they were added and refuses a name added twice', () => {
    const steps = new StepList<() => string>('publish');
    steps.add('limits', () => 'limits');
    steps.add('acl', () => 'acl');
    steps.add('store', () => 'store');
    expect(steps.names).toEqual(['limits', 'acl', 'store']);
    expect(steps.list.map((s) => s())).toEqual(['limits', 'acl', 'store']);
    expect(() => steps.add('acl', () => 'again')).toThrow('publish step "acl" is already registered');
    expect(steps.names).toEqual(['limits', 'acl', 'store']);
  });
});
