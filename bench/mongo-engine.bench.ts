/**
 * The in-process MongoDB engine against a real mongod, through the same driver
 * calls the app makes. The peer is the first of: BENCH_PEER_MONGODB_URI, a
 * mongod found by mongodb-memory-server (MONGOMS_SYSTEM_BINARY or a cached
 * download). Where no peer exists (as on the offline build machines) the table
 * shows the engine alone and says so.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { MongoClient, type Db } from 'mongodb';
import { pino } from 'pino';
import { startMongoEngine } from '../lib/mongo-engine/index.js';
import { startDatabaseServer } from '../lib/database.js';

interface Target {
  name: string;
  uri: string;
  stop: () => Promise<void>;
}

const docs = 10_000;
const ops = 2_000;
const rounds = 3;

const workloads: { name: string; unit: string; count: number; run: (db: Db) => Promise<void> }[] = [
  {
    name: `insertMany ${docs} docs (batches of 1000)`,
    unit: 'docs/s',
    count: docs,
    run: async (db) => {
      const coll = db.collection('accounts');
      for (let i = 0; i < docs; i += 1000) {
        await coll.insertMany(
          Array.from({ length: 1000 }, (_, j) => ({
            email: `u${i + j}@example.com`,
            balanceMinor: 1_000_000,
            status: 'active',
          })),
        );
      }
    },
  },
  {
    name: `findOne by unique email x${ops}`,
    unit: 'ops/s',
    count: ops,
    run: async (db) => {
      const coll = db.collection('accounts');
      for (let i = 0; i < ops; i++) await coll.findOne({ email: `u${(i * 7) % docs}@example.com` });
    },
  },
  {
    name: `guarded $inc debit x${ops} (8 in flight)`,
    unit: 'ops/s',
    count: ops,
    run: async (db) => {
      const coll = db.collection('accounts');
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < ops) {
          const i = next++;
          await coll.updateOne(
            { email: `u${i % docs}@example.com`, balanceMinor: { $gte: 100 } },
            { $inc: { balanceMinor: -100 } },
          );
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    },
  },
  {
    name: `findOneAndUpdate claim oldest x${ops}`,
    unit: 'ops/s',
    count: ops,
    run: async (db) => {
      const outbox = db.collection('outbox');
      await outbox.insertMany(
        Array.from({ length: ops }, (_, i) => ({ state: 'pending', at: new Date(i) })),
      );
      for (let i = 0; i < ops; i++) {
        await outbox.findOneAndUpdate(
          { state: 'pending' },
          { $set: { state: 'sent' } },
          { sort: { at: 1 } },
        );
      }
    },
  },
  {
    name: `aggregate $group over ${docs} docs x20`,
    unit: 'ops/s',
    count: 20,
    run: async (db) => {
      const coll = db.collection('accounts');
      for (let i = 0; i < 20; i++) {
        await coll
          .aggregate([
            { $match: { status: 'active' } },
            { $group: { _id: '$status', total: { $sum: '$balanceMinor' } } },
          ])
          .toArray();
      }
    },
  },
];

async function peer(): Promise<Target | null> {
  const logger = pino({ level: 'silent' });
  const given = process.env.BENCH_PEER_MONGODB_URI;
  if (given) return { name: 'mongod (BENCH_PEER_MONGODB_URI)', uri: given, stop: async () => {} };
  const server = await startDatabaseServer({
    isProduction: false,
    purpose: 'test',
    dataDir: await mkdtemp(path.join(os.tmpdir(), 'atlantic-bench-')),
    systemBinary: process.env.MONGOMS_SYSTEM_BINARY,
    allowDownload: false,
    logger,
  });
  if (server.engine === 'mongodb-memory-server') {
    return { name: 'mongod (mongodb-memory-server)', uri: server.uri, stop: () => server.stop() };
  }
  await server.stop();
  return null;
}

async function runRound(target: Target, round: number): Promise<number[]> {
  const client = new MongoClient(target.uri);
  await client.connect();
  const db = client.db(`bench_${round}_${Date.now()}`);
  await db.collection('accounts').createIndex({ email: 1 }, { unique: true });
  await db.collection('outbox').createIndex({ state: 1, at: 1 });
  const rates: number[] = [];
  for (const w of workloads) {
    const start = process.hrtime.bigint();
    await w.run(db);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(w.count / seconds);
  }
  await db.dropDatabase();
  await client.close();
  return rates;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

export default async function bench({ write }: { write: (line: string) => void }): Promise<void> {
  const engine = await startMongoEngine();
  const targets: Target[] = [
    { name: 'in-process engine', uri: engine.uri, stop: () => engine.stop() },
  ];
  const other = await peer();
  if (other) targets.push(other);
  else
    write('_No mongod peer on this machine (offline, no MONGOMS_SYSTEM_BINARY): engine only._\n');

  const results = targets.map(() => workloads.map(() => [] as number[]));
  for (let round = 0; round < rounds; round++) {
    for (const [t, target] of targets.entries()) {
      const rates = await runRound(target, round);
      rates.forEach((rate, w) => results[t]?.[w]?.push(rate));
    }
  }
  for (const target of targets) await target.stop();

  write(`| workload | ${targets.map((t) => t.name).join(' | ')} |`);
  write(`| --- | ${targets.map(() => '---:').join(' | ')} |`);
  for (const [w, workload] of workloads.entries()) {
    const cells = targets.map(
      (_, t) => `${Math.round(median(results[t]?.[w] ?? []))} ${workload.unit}`,
    );
    write(`| ${workload.name} | ${cells.join(' | ')} |`);
  }
  write(
    `\nMedian of ${rounds} interleaved rounds; client and server share this process and its cores.`,
  );
}
