/**
 * Atlantic's webhook route as a deployment runs it on a multi-core host: one
 * api process per core sharing the port (node:cluster), each with its own
 * payments service on the same database. webhooks.bench.ts starts it:
 *
 *   node --import tsx bench/webhook-cluster.ts <workers> <mongoUri> <dbName> <secretKey> <paystackBaseUrl> <expected>
 *
 * Prints one JSON line when every worker listens: `{ port, pids }`, and one
 * when the workers together have handled `expected` deliveries:
 * `{ doneAtEpochMs }`. SIGTERM stops the workers.
 */
import cluster from 'node:cluster';
import mongoose from 'mongoose';
import { pino } from 'pino';
import { benchPayments, startBenchApi } from './webhook-api.js';

const [workersArg, uri, dbName, secretKey, paystackBaseUrl, expectedArg] = process.argv.slice(2);
if (!workersArg || !uri || !dbName || !secretKey || !paystackBaseUrl || !expectedArg) {
  throw new Error(
    'usage: webhook-cluster.ts <workers> <mongoUri> <dbName> <secretKey> <paystackBaseUrl> <expected>',
  );
}

type Message = { type: 'listening'; port: number } | { type: 'handled' };

if (cluster.isPrimary) {
  const workers = Number(workersArg);
  const expected = Number(expectedArg);
  let listening = 0;
  let port = 0;
  let handled = 0;
  const pids: number[] = [];
  cluster.on('message', (_worker, message: Message) => {
    if (message.type === 'listening') {
      port = message.port;
      listening += 1;
      if (listening === workers) {
        process.stdout.write(`${JSON.stringify({ port, pids: [process.pid, ...pids] })}\n`);
      }
    } else if (++handled === expected) {
      process.stdout.write(`${JSON.stringify({ doneAtEpochMs: Date.now() })}\n`);
    }
  });
  for (let i = 0; i < workers; i++) {
    const worker = cluster.fork();
    if (worker.process.pid !== undefined) pids.push(worker.process.pid);
  }
  process.once('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    process.exit(0);
  });
} else {
  const logger = pino({ level: 'silent' });
  await mongoose.connect(uri, { dbName });
  const payments = benchPayments({ secretKey, paystackBaseUrl, logger });
  const send = (message: Message): void => {
    process.send?.(message);
  };
  payments.events.on('webhook.processed', () => send({ type: 'handled' }));
  const api = await startBenchApi(payments, logger);
  send({ type: 'listening', port: api.address().port });
  process.once('SIGTERM', () => {
    void api.stop().finally(() => process.exit(0));
  });
}
