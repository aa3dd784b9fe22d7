/**
 * Contract: Agenda 6 on this database runs every one-off job exactly once when
 * several workers compete (it claims jobs with one atomic findOneAndUpdate).
 * https://www.mongodb.com/docs/manual/reference/command/findAndModify/
 */
import { describe, expect, it } from '@jest/globals';
import { Agenda } from 'agenda';
import { MongoBackend } from '@agendajs/mongo-backend';
import { useTestDatabase } from '../support/database.js';

const database = useTestDatabase();

describe('Agenda with two workers', () => {
  it('runs each of 30 one-off jobs exactly once', async () => {
    const jobCount = 30;
    const runs = new Map<number, string[]>();
    const [clientA, clientB] = await Promise.all([database.newClient(), database.newClient()]);
    let finished = 0;
    let allDone: () => void = () => {};
    const done = new Promise<void>((resolve) => (allDone = resolve));

    const workers = [clientA, clientB].map((client, index) => {
      const agenda = new Agenda({
        backend: new MongoBackend({ mongo: client.db(database.dbName) }),
        name: `worker-${index}`,
        processEvery: 50,
        defaultConcurrency: 5,
        // Agenda keeps a lockLifetime/2 renewal timer alive after each job; a short
        // lifetime lets the test process exit promptly.
        defaultLockLifetime: 1000,
      });
      agenda.define<{ n: number }>('contract job', (job) => {
        const seen = runs.get(job.attrs.data.n) ?? [];
        seen.push(`worker-${index}`);
        runs.set(job.attrs.data.n, seen);
        finished++;
        if (finished >= jobCount) allDone();
      });
      return agenda;
    });
    const [first] = workers;
    if (!first) throw new Error('unreachable');
    await first.ready;
    await Promise.all(Array.from({ length: jobCount }, (_, n) => first.now('contract job', { n })));

    await Promise.all(workers.map((w) => w.start()));
    await done;
    await Promise.all(workers.map((w) => w.drain({ timeout: 5_000, closeConnection: false })));
    await Promise.all(workers.map((w) => w.stop(false)));

    const jobs = database.db.collection('agendaJobs');
    expect(
      await jobs.countDocuments({ name: 'contract job', lastFinishedAt: { $exists: true } }),
    ).toBe(jobCount);

    expect(runs.size).toBe(jobCount);
    for (const [, workersThatRan] of runs) expect(workersThatRan).toHaveLength(1);
  });
});
