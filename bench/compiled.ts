/**
 * Benchmarks run Atlantic's code as it ships: compiled by tsc (as `npm run
 * build` does for `npm start`), not through tsx. tsx's esbuild keeps function
 * names by wrapping every function in a `__name()` call that defines a `name`
 * property: each closure made per tunnel or per update then carries a
 * property array of its own (about 1.5 KiB per tunnel in a heap snapshot of
 * the gateway) and costs time whenever one is made. The shipped code has
 * none of that.
 */
import { execFile } from 'node:child_process';
import { symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');

/**
 * Compiles the benchmarks' entry points (bench/tsconfig.compiled.json) and
 * what they import into `<dir>/atlantic`; returns the path of `bench/<name>.js`
 * in it for each name asked.
 */
export async function compileForBench<const N extends string>(
  dir: string,
  names: readonly N[],
): Promise<Record<N, string>> {
  const outDir = path.join(dir, 'atlantic');
  try {
    await promisify(execFile)(
      process.execPath,
      [
        path.join(root, 'node_modules/typescript/bin/tsc'),
        '-p',
        path.join(root, 'bench/tsconfig.compiled.json'),
        '--outDir',
        outDir,
      ],
      { cwd: root },
    );
  } catch (error) {
    const { stdout } = error as { stdout?: string };
    throw new Error(`tsc failed for the benchmarks:\n${stdout ?? String(error)}`, {
      cause: error,
    });
  }
  // ES modules, and the project's dependencies, as in the checkout.
  await writeFile(path.join(outDir, 'package.json'), '{"type":"module"}\n');
  await symlink(path.join(root, 'node_modules'), path.join(outDir, 'node_modules'), 'dir');
  return Object.fromEntries(
    names.map((name) => [name, path.join(outDir, 'bench', `${name}.js`)]),
  ) as Record<N, string>;
}
