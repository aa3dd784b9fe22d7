/**
 * The jobs role: Agenda 6 on the same MongoDB. Later issues register one file
 * per job here; each calls one core function. Several jobs processes may run:
 * Agenda locks each job with one atomic findOneAndUpdate, so a run happens once.
 */
import { Agenda } from 'agenda';
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
