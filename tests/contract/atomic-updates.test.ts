/**
 * Contract: single-document atomicity, the only concurrency guarantee Atlantic
 * relies on (no multi-document transactions). Runs on whichever engine serves
 * the test run: a real MongoDB, mongodb-memory-server, or the in-process engine.
 */
import { describe, expect, it } from '@jest/globals';
import type { MongoClient } from 'mongodb';
import { useTestDatabase } from '../support/database.js';

const database = useTestDatabase();

interface Wallet {
  _id: string;
  balanceMinor: number;
}

interface OperatorsDoc {
  _id: string;
  n: number;
  tags: string[];
  nested: { x: number; y?: string };
  old?: boolean;
  set?: string[];
  high?: number;
  low?: number;
}

/** Several independent clients, so racing operations travel on different connections. */
async function clients(count: number): Promise<MongoClient[]> {
  return Promise.all(Array.from({ length: count }, () => database.newClient()));
}

describe('single-document atomic updates', () => {
  // https://www.mongodb.com/docs/manual/core/write-operations-atomicity/
  it('gives exactly floor(balance / amount) successes to 100 concurrent guarded decrements', async () => {
    const [a, b, c] = await clients(3);
    const wallets = database.db.collection<Wallet>('wallets');
    await wallets.insertOne({ _id: 'w1', balanceMinor: 1000 });

    const attempts = Array.from({ length: 100 }, (_, i) => {
      const client = [a, b, c][i % 3];
      if (!client) throw new Error('unreachable');
      return client
        .db(database.dbName)
        .collection<Wallet>('wallets')
        .updateOne({ _id: 'w1', balanceMinor: { $gte: 30 } }, { $inc: { balanceMinor: -30 } });
    });
    const results = await Promise.all(attempts);

    const successes = results.filter((r) => r.modifiedCount === 1).length;
    expect(successes).toBe(33);
    expect(await wallets.findOne({ _id: 'w1' })).toMatchObject({ balanceMinor: 10 });
  });

  // https://www.mongodb.com/docs/manual/reference/method/db.collection.findOneAndUpdate/
  it('lets exactly one of 50 racing pending -> paid transitions win', async () => {
    const [a, b] = await clients(2);
    const payments = database.db.collection('payments');
    await payments.insertOne({ reference: 'ref_1', status: 'pending' });

    if (!a || !b) throw new Error('unreachable');
    const racers = Array.from({ length: 50 }, (_, i) =>
      (i % 2 ? a : b)
        .db(database.dbName)
        .collection('payments')
        .findOneAndUpdate(
          { reference: 'ref_1', status: 'pending' },
          { $set: { status: 'paid', paidBy: i } },
          { returnDocument: 'after' },
        ),
    );
    const results = await Promise.all(racers);

    const winners = results.filter((r) => r !== null && r !== undefined);
    expect(winners).toHaveLength(1);
    const stored = await payments.findOne({ reference: 'ref_1' });
    expect(stored?.status).toBe('paid');
    expect(stored?.paidBy).toBe(winners[0]?.paidBy);
  });

  // https://www.mongodb.com/docs/manual/reference/method/db.collection.updateOne/#upsert-with-unique-index
  it('leaves one document when concurrent upserts race on a unique key', async () => {
    const usage = database.db.collection('usage_buckets');
    await usage.createIndex({ accountId: 1, hour: 1 }, { unique: true });
    const [a, b, c] = await clients(3);

    // MongoDB may answer a losing upsert with E11000; the documented remedy is to retry it.
    const upsert = async (client: MongoClient | undefined): Promise<void> => {
      if (!client) throw new Error('unreachable');
      const coll = client.db(database.dbName).collection('usage_buckets');
      const op = () =>
        coll.updateOne(
          { accountId: 'acc_1', hour: '2026-11-26T10' },
          { $inc: { bytes: 100 }, $setOnInsert: { createdAt: new Date(0) } },
          { upsert: true },
        );
      try {
        await op();
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        await op();
      }
    };
    await Promise.all(Array.from({ length: 30 }, (_, i) => upsert([a, b, c][i % 3])));

    const docs = await usage.find({ accountId: 'acc_1' }).toArray();
    expect(docs).toHaveLength(1);
    expect(docs[0]?.bytes).toBe(3000);
  });

  // https://www.mongodb.com/docs/manual/reference/operator/update/
  it('applies the update operators the code uses in one step', async () => {
    const coll = database.db.collection<OperatorsDoc>('operators');
    await coll.insertOne({
      _id: 'doc',
      n: 1,
      tags: ['a', 'b'],
      nested: { x: 1 },
      old: true,
    });
    await coll.updateOne(
      { _id: 'doc' },
      {
        $inc: { n: 2, 'nested.x': 5 },
        $set: { 'nested.y': 'set' },
        $unset: { old: '' },
        $push: { tags: 'c' },
        $addToSet: { set: 'x' },
        $max: { high: 10 },
        $min: { low: -1 },
      },
    );
    await coll.updateOne({ _id: 'doc' }, { $pull: { tags: 'a' } });
    const doc = await coll.findOne({ _id: 'doc' });
    expect(doc).toEqual({
      _id: 'doc',
      n: 3,
      tags: ['b', 'c'],
      nested: { x: 6, y: 'set' },
      set: ['x'],
      high: 10,
      low: -1,
    });
  });

  // https://www.mongodb.com/docs/manual/reference/command/findAndModify/#upsert-and-unique-index
  it('upserts with $setOnInsert only on insert and returns the new document on request', async () => {
    const coll = database.db.collection('settings');
    const first = await coll.findOneAndUpdate(
      { key: 'business' },
      { $setOnInsert: { vatBps: 750 }, $inc: { version: 1 } },
      { upsert: true, returnDocument: 'after' },
    );
    const second = await coll.findOneAndUpdate(
      { key: 'business' },
      { $setOnInsert: { vatBps: 0 }, $inc: { version: 1 } },
      { upsert: true, returnDocument: 'after' },
    );
    expect(first).toMatchObject({ key: 'business', vatBps: 750, version: 1 });
    expect(second).toMatchObject({ key: 'business', vatBps: 750, version: 2 });
  });

  // https://www.mongodb.com/docs/manual/reference/method/db.collection.findOneAndUpdate/#sort
  it('claims the oldest pending item first with a sorted findOneAndUpdate', async () => {
    const outbox = database.db.collection('outbox');
    await outbox.insertMany([
      { n: 3, state: 'pending', at: new Date('2026-01-03') },
      { n: 1, state: 'pending', at: new Date('2026-01-01') },
      { n: 2, state: 'pending', at: new Date('2026-01-02') },
    ]);
    const claimed: number[] = [];
    for (let i = 0; i < 4; i++) {
      const item = await outbox.findOneAndUpdate(
        { state: 'pending' },
        { $set: { state: 'sending' } },
        { sort: { at: 1 }, returnDocument: 'after' },
      );
      if (item) claimed.push(item.n as number);
    }
    expect(claimed).toEqual([1, 2, 3]);
  });

  // https://www.mongodb.com/docs/manual/reference/operator/update/slice/
  // https://www.mongodb.com/docs/manual/reference/operator/query/nin/
  it('keeps a bounded list of recent ids and refuses an id already in it, in one update', async () => {
    const wallets = database.db.collection<{ _id: string; balance: number; recent: string[] }>(
      'bounded',
    );
    await wallets.insertOne({ _id: 'w', balance: 0, recent: [] });
    const apply = (id: string) =>
      wallets.updateOne(
        { _id: 'w', recent: { $nin: [id] } },
        { $inc: { balance: 1 }, $push: { recent: { $each: [id], $slice: -3 } } },
      );

    const results = [];
    for (const id of ['a', 'b', 'a', 'c', 'd', 'a']) results.push(await apply(id));

    // The last `a` is applied again: it has fallen out of the window of three.
    expect(results.map((r) => r.modifiedCount)).toEqual([1, 1, 0, 1, 1, 1]);
    expect(await wallets.findOne({ _id: 'w' })).toEqual({
      _id: 'w',
      balance: 5,
      recent: ['c', 'd', 'a'],
    });
  });

  // https://www.mongodb.com/docs/manual/reference/method/db.collection.findOneAndUpdate/#sort
  it('upserts with a sort when nothing matches and updates the first by sort when something does', async () => {
    const coll = database.db.collection('sorted_upsert');
    const claim = () =>
      coll.findOneAndUpdate(
        { queue: 'q', taken: false },
        { $set: { taken: true }, $setOnInsert: { createdBy: 'upsert' } },
        { sort: { at: 1 }, upsert: true, returnDocument: 'after' },
      );
    const inserted = await claim();
    expect(inserted).toMatchObject({ queue: 'q', taken: true, createdBy: 'upsert' });

    await coll.insertMany([
      { queue: 'q', taken: false, at: 2 },
      { queue: 'q', taken: false, at: 1 },
    ]);
    expect(await claim()).toMatchObject({ at: 1, taken: true });
    expect(await coll.countDocuments({ queue: 'q' })).toBe(3);
  });
});
