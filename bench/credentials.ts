/** Login names and passwords for bench clients: a file of `username:password` lines (# comments). */
import { readFileSync } from 'node:fs';

export interface Credential {
  username: string;
  password: string;
}

export function readCredentials(file: string): Credential[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`${file}: expected username:password lines`);
      return { username: line.slice(0, colon), password: line.slice(colon + 1) };
    });
}
