/**
 * The jobs role: Agenda on the test database runs a scheduled job, and stop()
 * lets a running job finish before it returns (a deploy loses no work).
 */
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
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

  it('retries a failed job with backoff and counts runs and failures in the metrics', async () => {
    const metrics = new Registry();
    const role = createJobsRole({
      db: database.db,
      logger,
      workerName: 'test-worker-2',
      processEveryMs: 50,
      lockLifetimeMs: 1_000,
      retryDelayMs: 50,
      metrics,
    });
    let attempts = 0;
    let succeeded: () => void = () => {};
    const done = new Promise<void>((resolve) => (succeeded = resolve));
    role.agenda.define('flaky job', () => {
      attempts += 1;
      if (attempts === 1) return Promise.reject(new Error('the database blinked'));
      succeeded();
      return Promise.resolve();
    });
    await role.start();
    try {
      await role.agenda.now('flaky job', {});
      await done;
    } finally {
      await role.stop();
    }
    expect(attempts).toBe(2);
    const runs = await metrics.getSingleMetric('atlantic_job_runs_total')?.get();
    const count = (outcome: string) =>
      runs?.values.find((v) => v.labels.job === 'flaky job' && v.labels.outcome === outcome)
        ?.value ?? 0;
    expect([count('failure'), count('success')]).toEqual([1, 1]);
    const duration = await metrics.getSingleMetric('atlantic_job_duration_seconds')?.get();
    expect(
      duration?.values.find(
        (v) => v.labels.job === 'flaky job' && 'le' in v.labels && v.labels.le === '+Inf',
      )?.value,
    ).toBe(2);
  });
});
