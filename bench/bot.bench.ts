/**
 * Issue 6 "Speed": one conversation step through grammY's `handleUpdate`
 * with a recorded API, next to a minimal grammY bot and a bot with a MongoDB
 * session, in the same run (bench/bot-steps.ts has the workloads). It runs
 * compiled, in a process of its own, as the bot ships (bench/compiled.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { compileForBench } from './compiled.js';

export default async function bench({ write }: { write: (line: string) => void }): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-bench-bot-'));
  try {
    const { 'bot-steps': script } = await compileForBench(dir, ['bot-steps']);
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    for await (const line of createInterface({ input: child.stdout })) write(line);
    const code = await exited;
    if (code !== 0) write(`bot-steps exited with ${String(code)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
