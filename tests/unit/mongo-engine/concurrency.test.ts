import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import type { Db } from 'mongodb';
import { Agenda } from 'agenda';
import { MongoBackend } from '@agendajs/mongo-backend';
import { startMongoEngine } from '../../../lib/mongo-engine/index.js';
import type { MongoEngine } from '../../../lib/mongo-engine/index.js';

let engine: MongoEngine;
let clientA: MongoClient;
let clientB: MongoClient;
let dbA: Db;
let dbB: Db;

beforeAll(async () => {
  engine = await startMongoEngine();
  clientA = new MongoClient(`${engine.uri}race`, { maxPoolSize: 50 });
  clientB = new MongoClient(`${engine.uri}race`, { maxPoolSize: 50 });
  dbA = clientA.db();
  dbB = clientB.db();
});

afterAll(async () => {
  await clientA.close();
  await clientB.close();
  await engine.stop();
});

describe('mongo-engine atomicity under concurrent connections', () => {
  it('lets exactly as many guarded debits succeed as the balance allows', async () => {
    await dbA.collection('wallets').insertOne({ _id: 'w1' as never, balanceMinor: 1000 });
    const attempts = Array.from({ length: 100 }, (_, i) =>
      (i % 2 ? dbA : dbB)
        .collection('wallets')
        .updateOne(
          { _id: 'w1' as never, balanceMinor: { $gte: 30 } },
          { $inc: { balanceMinor: -30 } },
        ),
    );
    const results = await Promise.all(attempts);
    const successes = results.filter((r) => r.modifiedCount === 1).length;
    expect(successes).toBe(33);
    expect(await dbA.collection('wallets').findOne({ _id: 'w1' as never })).toEqual({
      _id: 'w1',
      balanceMinor: 10,
    });
  });

  it('fulfils a pending payment exactly once when 50 callbacks race', async () => {
    await dbA.collection('payments').insertOne({ reference: 'ref-1', status: 'pending' });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 ? dbA : dbB)
          .collection('payments')
          .updateOne(
            { reference: 'ref-1', status: 'pending' },
            { $set: { status: 'paid', by: i } },
          ),
      ),
    );
    expect(results.filter((r) => r.modifiedCount === 1)).toHaveLength(1);
  });

  it('leaves one document when upserts on a unique key race', async () => {
    await dbA.collection('periods').createIndex({ account: 1, period: 1 }, { unique: true });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? dbA : dbB)
          .collection('periods')
          .findOneAndUpdate(
            { account: 'acc', period: '2024-05' },
            { $setOnInsert: { chargedMinor: 500 } },
            { upsert: true, returnDocument: 'after' },
          ),
      ),
    );
    expect(outcomes.every((o) => o.status === 'fulfilled')).toBe(true);
    expect(await dbA.collection('periods').countDocuments({ account: 'acc' })).toBe(1);
  });

  it('runs each of 20 Agenda jobs exactly once across two workers', async () => {
    const runs = new Map<number, number>();
    const makeWorker = (name: string, db: Db): Agenda => {
      const agenda = new Agenda({
        backend: new MongoBackend({ mongo: db }),
        name,
        processEvery: 20,
        // Agenda keeps a lockLifetime/2 liveness timer per job run after it finishes;
        // a short lifetime keeps jest from waiting on those timers at exit.
        defaultLockLifetime: 1000,
      });
      agenda.define<{ n: number }>('tick', (job) => {
        const n = job.attrs.data.n;
        runs.set(n, (runs.get(n) ?? 0) + 1);
        return Promise.resolve();
      });
      return agenda;
    };
    const workers = [makeWorker('w1', dbA), makeWorker('w2', dbB)];
    const finished = new Promise<void>((resolve) => {
      let done = 0;
      for (const worker of workers) {
        worker.on('complete', () => {
          done += 1;
          if (done === 20) resolve();
        });
      }
    });
    await Promise.all(workers.map((w) => w.start()));
    const [first] = workers;
    for (let n = 0; n < 20; n += 1) await first?.now('tick', { n });
    await finished;
    // Agenda records lastFinishedAt after 'complete'; stopping earlier would leave that
    // write in flight against a client that is about to close.
    const jobs = dbA.collection('agendaJobs');
    for (let i = 0; i < 500; i += 1) {
      if ((await jobs.countDocuments({ name: 'tick', lastFinishedAt: { $exists: true } })) === 20)
        break;
    }
    await Promise.all(workers.map((w) => w.drain({ timeout: 5000 })));
    expect([...runs.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect([...runs.values()].every((count) => count === 1)).toBe(true);
  });
});
