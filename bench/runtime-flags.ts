/**
 * The Node flags Atlantic ships with: the ones `npm start` (package.json)
 * passes before the entry point, which the Dockerfile's CMD repeats
 * (tests/unit/deploy-files.test.ts holds them together). Benchmarks run
 * Atlantic's processes with the same flags, so a figure is the shipped one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

export function runtimeNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const [node, ...rest] = pkg.scripts.start.split(/\s+/);
  if (node !== 'node') throw new Error(`npm start does not run node: ${pkg.scripts.start}`);
  return rest.filter((part) => part.startsWith('--'));
}
