/**
 * The jobs role: Agenda on the test database runs a scheduled job, and stop()
 * lets a running job finish before it returns (a deploy loses no work).
 */
import { describe, expect, it } from '@jest/globals';
import { createJobsRole } from '../../jobs/index.js';
import { createLogger } from '../../lib/logger.js';
import { useTestDatabase } from '../support/database.js';

const database = useTestDatabase();
const logger = createLogger({ level: 'silent' });

describe('jobs role', () => {
  it('runs a job scheduled now and drains it on stop', async () => {
    const role = createJobsRole({
      db: database.db,
      logger,
      workerName: 'test-worker',
      processEveryMs: 50,
      lockLifetimeMs: 1_000,
    });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started: () => void = () => {};
    const jobStarted = new Promise<void>((resolve) => (started = resolve));
    let finished = false;
    role.agenda.define('slow job', async () => {
      started();
      await gate;
      finished = true;
    });

    await role.start();
    await role.agenda.now('slow job', {});
    await jobStarted;

    let stopped = false;
    let finishedWhenStopped = false;
    const stopping = role.stop().then(() => {
      stopped = true;
      finishedWhenStopped = finished;
    });
    // A stop() that did not wait would be done after a few database round trips.
    for (let i = 0; i < 5; i++) await database.db.command({ ping: 1 });
    expect(stopped).toBe(false);
    release();
    await stopping;

    expect(finishedWhenStopped).toBe(true);
    const job = await database.db.collection('agendaJobs').findOne({ name: 'slow job' });
    expect(job?.lastFinishedAt).toBeInstanceOf(Date);
    expect(job?.lockedAt ?? null).toBeNull();
  });
});
