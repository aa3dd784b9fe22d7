/**
 * The jobs role: Agenda 6 on the same MongoDB. Later issues register one file
 * per job here; each calls one core function. Several jobs processes may run:
 * Agenda locks each job with one atomic findOneAndUpdate, so a run happens once.
 */
import { Agenda, backoffStrategies } from 'agenda';
import { Counter, Histogram, type Registry } from 'prom-client';
import { MongoBackend } from '@agendajs/mongo-backend';
import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import type { Role } from '../lib/role.js';

export interface JobsRoleOptions {
  db: Db;
  logger: Logger;
  /** Worker name shown in Agenda's lock fields; unique per process. */
  workerName: string;
  /** How often Agenda looks for due jobs. Default 5 s. */
  processEveryMs?: number;
  /** How long stop() waits for running jobs before unlocking them. Default 30 s. */
  drainTimeoutMs?: number;
  /** How long a claimed job stays locked to this worker without renewal. Default 10 min. */
  lockLifetimeMs?: number;
  /** Defines and schedules the jobs (one file per duty under jobs/); runs before processing starts. */
  register?: (agenda: Agenda) => Promise<void>;
  /** Where the job metrics go (runs, failures, duration); none when unset. */
  metrics?: Registry;
  /**
   * A job that fails is tried again after this delay, doubling up to a
   * minute, three times (default 5 s); a recurring job then waits for its
   * next run.
   */
  retryDelayMs?: number;
}

export interface JobsRole extends Role {
  readonly agenda: Agenda;
}

export function createJobsRole(options: JobsRoleOptions): JobsRole {
  const logger = options.logger.child({ role: 'jobs' });
  const agenda = new Agenda({
    backend: new MongoBackend({ mongo: options.db }),
    name: options.workerName,
    processEvery: options.processEveryMs ?? 5_000,
    maxConcurrency: 20,
    defaultLockLifetime: options.lockLifetimeMs ?? 10 * 60_000,
  });
  agenda.on('error', (err) => logger.error({ err }, 'jobs.agenda_error'));
  // Every job gets a retry with backoff unless its definition says otherwise.
  const define = agenda.define.bind(agenda) as (...args: unknown[]) => void;
  const backoff = backoffStrategies.exponential({
    delay: options.retryDelayMs ?? 5_000,
    maxDelay: 60_000,
    maxRetries: 3,
  });
  (agenda as { define: (...args: unknown[]) => void }).define = (...args: unknown[]) => {
    const [name, processor, jobOptions] = args;
    define(name, processor, { backoff, ...(jobOptions as Record<string, unknown> | undefined) });
  };
  observeJobs(agenda, options.metrics, logger);
  // Jobs running in this process, counted here: Agenda 6's drain() keeps a
  // finished recurring job in its own list and then waits out its whole
  // timeout, which would hold every deploy for 30 s.
  let running = 0;
  let idleWaiters: (() => void)[] = [];
  agenda.on('start', () => {
    running += 1;
  });
  agenda.on('complete', () => {
    running = Math.max(0, running - 1);
    if (running > 0) return;
    for (const resolve of idleWaiters) resolve();
    idleWaiters = [];
  });
  const idle = (): Promise<void> =>
    running === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve));
  agenda.on('fail', (err: unknown, job: { attrs: { name: string } }) =>
    logger.error({ err, job: job.attrs.name }, 'jobs.failed'),
  );

  return {
    name: 'jobs',
    agenda,
    async start() {
      await agenda.ready;
      await options.register?.(agenda);
      await agenda.start();
      logger.info({ worker: options.workerName }, 'jobs.started');
    },
    async stop() {
      // drain() stops taking new jobs at once; stopping is done when the jobs
      // running now have finished (counted above) or at the drain timeout.
      const abort = new AbortController();
      const draining = agenda.drain({
        timeout: options.drainTimeoutMs ?? 30_000,
        closeConnection: false,
        signal: abort.signal,
      });
      await Promise.race([draining, idle()]);
      abort.abort();
      const result = await draining;
      // drain() leaves unfinished jobs locked; stop() unlocks them for another worker.
      await agenda.stop(false);
      logger.info({ timedOut: result.timedOut, stillRunning: running }, 'jobs.stopped');
    },
  };
}

/** Runs, failures and durations per job name, as Prometheus metrics and log lines. */
function observeJobs(agenda: Agenda, registry: Registry | undefined, logger: Logger): void {
  const registers = registry ? [registry] : [];
  const runs = new Counter({
    name: 'atlantic_job_runs_total',
    help: 'Job runs by job name and outcome',
    labelNames: ['job', 'outcome'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'atlantic_job_duration_seconds',
    help: 'Job run time by job name',
    labelNames: ['job'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers,
  });
  const startedAt = new Map<string, bigint>();
  const keyOf = (job: JobEvent) => `${job.attrs.name}:${String(job.attrs._id)}`;
  agenda.on('start', (job: JobEvent) => startedAt.set(keyOf(job), process.hrtime.bigint()));
  const finished = (job: JobEvent, outcome: 'success' | 'failure') => {
    const key = keyOf(job);
    const started = startedAt.get(key);
    startedAt.delete(key);
    const seconds = started === undefined ? 0 : Number(process.hrtime.bigint() - started) / 1e9;
    runs.inc({ job: job.attrs.name, outcome });
    duration.observe({ job: job.attrs.name }, seconds);
    // Failures are logged at error level where the role listens for them.
    if (outcome === 'success') logger.debug({ job: job.attrs.name, seconds }, 'jobs.ran');
  };
  agenda.on('success', (job: JobEvent) => finished(job, 'success'));
  agenda.on('fail', (_err: unknown, job: JobEvent) => finished(job, 'failure'));
}

interface JobEvent {
  attrs: { name: string; _id?: unknown };
}
