/**
 * A jobs process killed in the middle of a job (SIGKILL: no drain, no
 * unlock): once its lock lifetime passes, another process takes the job over
 * and finishes the work, and nothing is done twice. Real Agenda in two real
 * processes, real time with a short lock; the test waits for events.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createJobsRole } from '../../../jobs/index.js';
import { createLogger } from '../../../lib/logger.js';
import { useTestDatabase } from '../../support/database.js';
import { defineTwoStepWork, TWO_STEP_JOB } from './two-step-work.js';

const database = useTestDatabase();
const root = path.resolve(import.meta.dirname, '../../..');

/** Resolves when the child has printed `wanted` on a line of its own (already or later). */
function linesOf(child: ChildProcess): (wanted: string) => Promise<void> {
  const seen = new Set<string>();
  const waiters = new Map<string, () => void>();
  if (!child.stdout) throw new Error('no stdout');
  createInterface({ input: child.stdout }).on('line', (line) => {
    const text = line.trim();
    seen.add(text);
    waiters.get(text)?.();
  });
  return (wanted) =>
    seen.has(wanted)
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          waiters.set(wanted, resolve);
          child.once('exit', () => reject(new Error(`the worker ended before printing ${wanted}`)));
        });
}

describe('a jobs process killed mid-run', () => {
  it('has its job finished by another process once the lock expires, each step done once', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(import.meta.dirname, 'kill-worker.ts'),
        database.uri,
        database.dbName,
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    // Never left behind, whatever happens below.
    const reap = () =>
      child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
    process.once('exit', reap);
    const printed = linesOf(child);
    await printed('READY').catch((error: unknown) => {
      reap();
      throw error;
    });

    // The survivor schedules the work; only the doomed worker processes jobs yet.
    const survivor = createJobsRole({
      db: database.db,
      logger: createLogger({ level: 'silent' }),
      workerName: 'survivor',
      processEveryMs: 50,
      lockLifetimeMs: 1_000,
      register: (agenda) => {
        defineTwoStepWork(agenda, database.db);
        return Promise.resolve();
      },
    });
    await survivor.agenda.ready;
    defineTwoStepWork(survivor.agenda, database.db);
    await survivor.agenda.now(TWO_STEP_JOB);
    await printed('STARTED');
    child.kill('SIGKILL');
    await once(child, 'exit');

    const steps = database.db.collection<{ _id: string; done: number; attempts: number }>(
      'work_steps',
    );
    expect(await steps.find().sort({ _id: 1 }).toArray()).toEqual([
      { _id: 'one', done: 1, attempts: 1 },
    ]);

    const finished = new Promise<void>((resolve) =>
      survivor.agenda.once(`complete:${TWO_STEP_JOB}`, () => resolve()),
    );
    await survivor.start();
    try {
      await finished;
    } finally {
      await survivor.stop();
    }
    // Step one was attempted again by the rerun but done once; step two done once.
    expect(await steps.find().sort({ _id: 1 }).toArray()).toEqual([
      { _id: 'one', done: 1, attempts: 2 },
      { _id: 'two', done: 1, attempts: 1 },
    ]);
    const job = await database.db.collection('agendaJobs').findOne({ name: TWO_STEP_JOB });
    expect(job?.lastFinishedAt).toBeInstanceOf(Date);
  }, 30_000);
});
