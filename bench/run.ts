/**
 * `npm run bench`: runs every `bench/*.bench.ts` (or the ones named on the
 * command line) and prints their tables. Benchmarks compare Atlantic's part
 * with a peer in the same run, interleaving rounds so both see the same
 * machine state. Timings never go into the test suite.
 */
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface BenchModule {
  /** Runs the benchmark and writes its own table to stdout. */
  default: (context: { write: (line: string) => void }) => Promise<void>;
}

const dir = import.meta.dirname;
const wanted = process.argv.slice(2);
const files = (await readdir(dir))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

const write = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
write(
  `# Atlantic benchmarks — node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${new Date().toISOString()}`,
);
for (const file of files) {
  write(`\n## ${file}\n`);
  const mod = (await import(pathToFileURL(path.join(dir, file)).href)) as BenchModule;
  await mod.default({ write });
}
