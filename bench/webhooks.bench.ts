/**
 * Paystack webhooks end to end: signed `charge.success` deliveries from 50
 * concurrent senders (20 % of them duplicates) to POST /webhooks/paystack; an
 * event counts as processed once it is stored, verified against the Paystack
 * emulator (its own process) and the payment fulfilled (plan or wallet top-up,
 * invoice, notification). The peer in the same run is a bare Express route that
 * only checks the signature and answers 200.
 *
 * Target (issue 3): at least 500 processed events per second, none lost, none doubled.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Session } from 'node:inspector';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import express from 'express';
import mongoose from 'mongoose';
import { pino } from 'pino';
import { seedPlans } from '../core/plans.js';
import { systemClock } from '../lib/clock.js';
import { isValidPaystackSignature } from '../lib/paystack/signature.js';
import { Account } from '../models/account.js';
import { Payment } from '../models/payment.js';
import { Invoice } from '../models/invoice.js';
import { LedgerEntry } from '../models/ledger-entry.js';
import { Subscription } from '../models/subscription.js';
import { chooseWebhookSender } from './webhook-sender-native.js';
import { benchPayments, startBenchApi } from './webhook-api.js';

const EVENTS = Number(process.env.BENCH_WEBHOOK_EVENTS ?? 2_000);
const DUPLICATE_SHARE = 0.2;
const SENDERS = 50;
/** Api processes in an extra Atlantic run sharing the port (BENCH_WEBHOOK_WORKERS=2; default 1: no extra run). */
const WORKERS = Number(process.env.BENCH_WEBHOOK_WORKERS ?? 1);

interface SendStats {
  latenciesMs: number[];
  seconds: number;
  failures: number;
  /** When the first delivery left the sender process (wall clock, shared by both processes). */
  startedAtEpochMs: number;
  /** CPU time the sender process spent sending. */
  cpuSeconds: number;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Starts `script` (a TypeScript entry) as a child process and reads its first stdout line as JSON. */
async function startChild<T>(
  script: string,
  args: string[],
): Promise<{ info: T; stop: () => void; pid: number | undefined }> {
  const root = path.resolve(import.meta.dirname, '..');
  // BENCH_CHILD_PROFILE_DIR=<dir>: CPU profiles of the engine, emulator and senders too.
  const profileDir = process.env.BENCH_CHILD_PROFILE_DIR;
  const profiling = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(
    process.execPath,
    [...profiling, '--import', 'tsx', path.join(root, script), ...args],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  if (!child.stdout) throw new Error(`${script} has no stdout`);
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  return { info: JSON.parse(line) as T, stop: () => child.kill('SIGTERM'), pid: child.pid };
}

async function control(baseUrl: string, secretKey: string, pathname: string, body: unknown) {
  const res = await fetch(`${baseUrl}/_emulator/${pathname}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`emulator control ${pathname}: ${res.status} ${await res.text()}`);
}

/** Which sender send() ran, for the setup line. */
let senderUsed = '';

/**
 * Sends every body from `SENDERS` concurrent loops in a separate process, so
 * the load generator does not share a core's time with the server it
 * measures: the native C sender (bench/webhook-sender-native.ts) when gcc
 * builds it, else, or with BENCH_NODE_SENDER=1, the Node one
 * (bench/webhook-sender.ts).
 */
async function send(url: string, bodies: string[], secretKey: string): Promise<SendStats> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-bench-'));
  const jobFile = path.join(dir, 'job.json');
  await writeFile(jobFile, JSON.stringify({ url, secretKey, senders: SENDERS, bodies }));
  const choice = await chooseWebhookSender();
  senderUsed = choice.description;
  const sender = await startChild<SendStats>(choice.script, [jobFile, ...choice.args]);
  sender.stop();
  return sender.info;
}

/**
 * BENCH_PROFILE=<file.cpuprofile>: a CPU profile of Atlantic's process while it
 * receives and processes the deliveries (open it in Chrome DevTools).
 */
async function startProfiler(file: string | undefined): Promise<{ stop: () => Promise<void> }> {
  if (!file) return { stop: async () => {} };
  const session = new Session();
  session.connect();
  const post = (method: string): Promise<unknown> =>
    new Promise((resolve, reject) =>
      session.post(method, (err, result) => (err ? reject(err) : resolve(result))),
    );
  await post('Profiler.enable');
  await post('Profiler.start');
  return {
    stop: async () => {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      await writeFile(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

interface ClusterRun {
  stats: SendStats;
  seconds: number;
  cpuMsPerEvent: { atlantic: number; engine: number; emulator: number; senders: number };
}

/**
 * Starts bench/webhook-cluster.ts (the api role in `workers` processes sharing
 * one port), sends `deliveries` to it and waits until every one was handled.
 */
async function runCluster(options: {
  workers: number;
  uri: string;
  secretKey: string;
  paystackBaseUrl: string;
  deliveries: string[];
  pids: { engine: number | undefined; emulator: number | undefined };
}): Promise<ClusterRun> {
  const root = path.resolve(import.meta.dirname, '..');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(root, 'bench/webhook-cluster.ts'),
      String(options.workers),
      options.uri,
      'bench_webhooks',
      options.secretKey,
      options.paystackBaseUrl,
      String(options.deliveries.length),
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (!child.stdout) throw new Error('webhook-cluster.ts has no stdout');
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async <T>(): Promise<T> => {
    const { value, done } = (await lines.next()) as { value: string; done?: boolean };
    if (done) throw new Error('webhook-cluster.ts ended early');
    return JSON.parse(value) as T;
  };
  try {
    const { port, pids } = await next<{ port: number; pids: number[] }>();
    const cpu = (): { atlantic: number; engine: number; emulator: number } => ({
      atlantic: pids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0),
      engine: cpuSecondsOf(options.pids.engine),
      emulator: cpuSecondsOf(options.pids.emulator),
    });
    const before = cpu();
    const done = next<{ doneAtEpochMs: number }>();
    const stats = await send(
      `http://127.0.0.1:${port}/webhooks/paystack`,
      options.deliveries,
      options.secretKey,
    );
    const { doneAtEpochMs } = await done;
    const after = cpu();
    const events = options.deliveries.length / (1 + DUPLICATE_SHARE);
    const perEvent = (seconds: number): number => (seconds * 1e3) / events;
    return {
      stats,
      seconds: (doneAtEpochMs - stats.startedAtEpochMs) / 1000,
      cpuMsPerEvent: {
        atlantic: perEvent(after.atlantic - before.atlantic),
        engine: perEvent(after.engine - before.engine),
        emulator: perEvent(after.emulator - before.emulator),
        senders: perEvent(stats.cpuSeconds),
      },
    };
  } finally {
    child.kill('SIGTERM');
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

export default async function bench({ write }: { write: (line: string) => void }): Promise<void> {
  const secretKey = `sk_test_${randomBytes(12).toString('hex')}`;
  const logger = pino({ level: 'silent' });
  // The database engine in its own process, on the other core, as a mongod would be.
  const engine = await startChild<{ uri: string }>('lib/mongo-engine/main.ts', []);
  await mongoose.connect(engine.info.uri, { dbName: 'bench_webhooks', monitorCommands: true });
  const tally = new Map<string, number>();
  let counting = false;
  mongoose.connection.getClient().on('commandStarted', (e) => {
    if (!counting) return;
    const cmd = e.command as Record<string, unknown>;
    const key = `${e.commandName} ${String(cmd[e.commandName])}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  });
  await Promise.all(Object.values(mongoose.models).map((m) => m.init()));
  const emulatorProcess = await startChild<{ baseUrl: string }>('lib/paystack/emulator/main.ts', [
    '--secret-key',
    secretKey,
  ]);
  const emulator = {
    baseUrl: emulatorProcess.info.baseUrl,
    stop: emulatorProcess.stop,
    pid: emulatorProcess.pid,
  };

  try {
    await seedPlans(systemClock);
    const payments = benchPayments({ secretKey, paystackBaseUrl: emulator.baseUrl, logger });

    /** Customers with open, paid checkouts (half plans, half wallet top-ups) and their signed deliveries. */
    const prepare = async (
      round: number,
    ): Promise<{ deliveries: string[]; duplicates: string[] }> => {
      const accounts = await Account.insertMany(
        Array.from({ length: EVENTS }, (_, i) => ({ email: `bench${round}-${i}@example.com` })),
      );
      const references: string[] = [];
      for (let i = 0; i < accounts.length; i += 50) {
        const batch = accounts.slice(i, i + 50);
        const checkouts = await Promise.all(
          batch.map((account, j) =>
            (i + j) % 2 === 0
              ? payments.checkout({
                  accountId: String(account._id),
                  purpose: 'plan',
                  planCode: 'starter',
                })
              : payments.checkout({
                  accountId: String(account._id),
                  purpose: 'wallet_topup',
                  amountMinor: 100_000,
                }),
          ),
        );
        await Promise.all(
          checkouts.map((c) => control(emulator.baseUrl, secretKey, `pay/${c.reference}`, {})),
        );
        references.push(...checkouts.map((c) => c.reference));
      }

      const eventBody = (reference: string): string =>
        JSON.stringify({ event: 'charge.success', data: { reference, status: 'success' } });
      const unique = references.map(eventBody);
      const duplicates = Array.from(
        { length: Math.round(EVENTS * DUPLICATE_SHARE) },
        (_, i) => unique[(i * 7) % unique.length] ?? '',
      );
      const deliveries = shuffle([...unique, ...duplicates]);

      return { deliveries, duplicates };
    };
    const { deliveries, duplicates } = await prepare(1);

    // Atlantic's webhook route, with fulfilment.
    let handled = 0;
    let allHandled: (atEpochMs: number) => void = () => {};
    const everyDeliveryHandled = new Promise<number>((resolve) => (allHandled = resolve));
    payments.events.on('webhook.processed', () => {
      if (++handled === deliveries.length) allHandled(Date.now());
    });
    const api = await startBenchApi(payments, logger);

    // The peer: a bare route that checks the signature and nothing else.
    const bare = express();
    bare.post('/webhooks/paystack', express.raw({ type: () => true }), (req, res) => {
      const ok = isValidPaystackSignature(
        req.body as Buffer,
        req.get('x-paystack-signature'),
        secretKey,
      );
      res.status(ok ? 200 : 401).end();
    });
    const bareServer = createServer(bare).listen(0, '127.0.0.1');
    await once(bareServer, 'listening');

    const bareStats = await send(
      `http://127.0.0.1:${(bareServer.address() as AddressInfo).port}/webhooks/paystack`,
      deliveries,
      secretKey,
    );

    counting = true;
    const profiler = await startProfiler(process.env.BENCH_PROFILE);
    const cpuBefore = {
      atlantic: process.cpuUsage(),
      engine: cpuSecondsOf(engine.pid),
      emulator: cpuSecondsOf(emulator.pid),
    };
    const atlanticStats = await send(
      `http://127.0.0.1:${api.address().port}/webhooks/paystack`,
      deliveries,
      secretKey,
    );
    const handledAtEpochMs = await everyDeliveryHandled;
    counting = false;
    const atlanticCpu = process.cpuUsage(cpuBefore.atlantic);
    const cpuMsPerEvent = {
      atlantic: (atlanticCpu.user + atlanticCpu.system) / 1e3 / EVENTS,
      engine: ((cpuSecondsOf(engine.pid) - cpuBefore.engine) * 1e3) / EVENTS,
      emulator: ((cpuSecondsOf(emulator.pid) - cpuBefore.emulator) * 1e3) / EVENTS,
      senders: (atlanticStats.cpuSeconds * 1e3) / EVENTS,
    };
    await profiler.stop();
    const commands = [...tally].sort((a, b) => b[1] - a[1]);
    const perEvent = (n: number) => (n / EVENTS).toFixed(2);
    const processedSeconds = (handledAtEpochMs - atlanticStats.startedAtEpochMs) / 1000;

    // The same route as a multi-core host runs it: one api process per core
    // sharing the port, on a fresh set of payments.
    const clusterRun =
      WORKERS > 1
        ? await runCluster({
            workers: WORKERS,
            uri: engine.info.uri,
            secretKey,
            paystackBaseUrl: emulator.baseUrl,
            deliveries: (await prepare(2)).deliveries,
            pids: { engine: engine.pid, emulator: emulator.pid },
          })
        : null;
    const rounds = clusterRun ? 2 : 1;

    const total = EVENTS * rounds;
    const fulfilled = await Payment.countDocuments({ fulfilledAt: { $exists: true } });
    const invoices = await Invoice.countDocuments({ sequence: { $exists: true } });
    const subscriptions = await Subscription.countDocuments({ status: 'active' });
    const credits = await LedgerEntry.countDocuments({ status: 'applied' });
    const numbers = (await Invoice.find({}, { sequence: 1 }).lean()).map((i) => i.sequence ?? 0);
    const gapFree =
      new Set(numbers).size === numbers.length && Math.max(...numbers) === numbers.length;

    write(
      `${EVENTS} payments, ${deliveries.length} signed deliveries (${duplicates.length} duplicates), ${SENDERS} concurrent senders (${senderUsed}); the senders, Atlantic, the in-process database engine and the Paystack emulator each in their own process.\n`,
    );
    write('| route | acks/s | ack p50 | ack p99 | non-200 | processed events/s |');
    write('| --- | ---: | ---: | ---: | ---: | ---: |');
    const row = (name: string, s: SendStats, processed: string) =>
      write(
        `| ${name} | ${Math.round(s.latenciesMs.length / s.seconds)} | ${percentile(s.latenciesMs, 50).toFixed(1)} ms | ${percentile(s.latenciesMs, 99).toFixed(1)} ms | ${s.failures} | ${processed} |`,
      );
    row('bare Express, signature check only', bareStats, 'n/a');
    row(
      'Atlantic POST /webhooks/paystack, one process',
      atlanticStats,
      `${Math.round(EVENTS / processedSeconds)} (all ${EVENTS} in ${processedSeconds.toFixed(2)} s)`,
    );
    if (clusterRun) {
      row(
        `Atlantic POST /webhooks/paystack, ${WORKERS} api processes (node:cluster)`,
        clusterRun.stats,
        `${Math.round(EVENTS / clusterRun.seconds)} (all ${EVENTS} in ${clusterRun.seconds.toFixed(2)} s)`,
      );
    }
    write(
      `\nDatabase commands per event while Atlantic ran: ${perEvent(commands.reduce((sum, [, n]) => sum + n, 0))} (most: ${commands
        .slice(0, 4)
        .map(([name, n]) => `${name} ${perEvent(n)}`)
        .join(', ')}).`,
    );
    write(
      `\nCPU per processed event: Atlantic ${cpuMsPerEvent.atlantic.toFixed(2)} ms, database engine ${cpuMsPerEvent.engine.toFixed(2)} ms, Paystack emulator ${cpuMsPerEvent.emulator.toFixed(2)} ms, senders ${cpuMsPerEvent.senders.toFixed(2)} ms (the machine has ${os.cpus().length} cores: 1000 ms of CPU per second each).`,
    );
    if (clusterRun) {
      const c = clusterRun.cpuMsPerEvent;
      write(
        `With ${WORKERS} api processes: Atlantic ${c.atlantic.toFixed(2)} ms (all its processes), database engine ${c.engine.toFixed(2)} ms, Paystack emulator ${c.emulator.toFixed(2)} ms, senders ${c.senders.toFixed(2)} ms.`,
      );
    }
    write(
      `\nChecks over both runs: fulfilled ${fulfilled}/${total}, active plans ${subscriptions}/${total / 2}, wallet credits ${credits}/${total / 2}, invoices ${invoices}/${total} gap-free: ${gapFree}.`,
    );

    await api.stop();
    await new Promise((resolve) => bareServer.close(resolve));
  } finally {
    emulator.stop();
    await mongoose.disconnect();
    engine.stop();
  }
}
