/**
 * A jobs process for the kill test (killed-process.test.ts), run as a child:
 *
 *   node --import tsx tests/integration/jobs/kill-worker.ts <mongodb-uri> <dbName>
 *
 * It runs the `work.two-steps` job: step one is done, `STARTED` is printed,
 * and then the process hangs there until the test kills it.
 */
import mongoose from 'mongoose';
import { createJobsRole } from '../../../jobs/index.js';
import { createLogger } from '../../../lib/logger.js';
import { defineTwoStepWork } from './two-step-work.js';

const [uri, dbName] = process.argv.slice(2);
if (!uri || !dbName) throw new Error('usage: kill-worker.ts <mongodb-uri> <dbName>');
await mongoose.connect(uri, { dbName });
const db = mongoose.connection.db;
if (!db) throw new Error('no database');
const role = createJobsRole({
  db,
  logger: createLogger({ level: 'silent' }),
  workerName: 'doomed-worker',
  processEveryMs: 50,
  lockLifetimeMs: 1_000,
  register: (agenda) => {
    defineTwoStepWork(agenda, db, {
      afterStepOne: async () => {
        process.stdout.write('STARTED\n');
        await new Promise(() => undefined); // killed here
      },
    });
    return Promise.resolve();
  },
});
await role.start();
process.stdout.write('READY\n');
