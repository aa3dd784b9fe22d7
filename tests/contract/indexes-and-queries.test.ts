/**
 * Contract: unique indexes, TTL, query shaping and cursors, as Atlantic's
 * models and jobs use them.
 */
import { describe, expect, it } from '@jest/globals';
import { MongoClient, MongoServerError, type CommandStartedEvent } from 'mongodb';
import { useTestDatabase } from '../support/database.js';

const database = useTestDatabase();

/** Waits for a condition the server brings about by itself, checking every `everyMs`. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

describe('unique indexes', () => {
  // https://www.mongodb.com/docs/manual/core/index-unique/
  it('rejects a second document with the same unique key with E11000 naming the key', async () => {
    const refs = database.db.collection('refs');
    await refs.createIndex({ reference: 1 }, { unique: true });
    await refs.insertOne({ reference: 'atl_1' });

    const error = await refs.insertOne({ reference: 'atl_1' }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(MongoServerError);
    expect(error).toMatchObject({ code: 11000, keyValue: { reference: 'atl_1' } });
    expect(String((error as Error).message)).toMatch(/E11000 duplicate key error/);
    expect(await refs.countDocuments()).toBe(1);
  });

  // https://www.mongodb.com/docs/manual/core/index-compound/
  it('enforces a compound unique key on the pair, not on each field', async () => {
    const ids = database.db.collection('identities');
    await ids.createIndex({ channel: 1, externalId: 1 }, { unique: true });
    await ids.insertMany([
      { channel: 'telegram', externalId: '42' },
      { channel: 'whatsapp', externalId: '42' },
    ]);
    await expect(ids.insertOne({ channel: 'telegram', externalId: '42' })).rejects.toMatchObject({
      code: 11000,
    });
    expect(await ids.countDocuments()).toBe(2);
  });

  // https://www.mongodb.com/docs/manual/core/index-partial/
  it('applies a partial unique index only to documents that match its filter', async () => {
    const accounts = database.db.collection('accounts_partial');
    await accounts.createIndex(
      { email: 1 },
      { unique: true, partialFilterExpression: { email: { $exists: true } } },
    );
    await accounts.insertMany([{ name: 'no email 1' }, { name: 'no email 2' }]);
    await accounts.insertOne({ email: 'a@example.com' });
    await expect(accounts.insertOne({ email: 'a@example.com' })).rejects.toMatchObject({
      code: 11000,
    });
    expect(await accounts.countDocuments()).toBe(3);
  });

  // https://www.mongodb.com/docs/manual/reference/method/db.collection.insertMany/#error-handling
  it('stops an ordered batch at the first duplicate and keeps the documents before it', async () => {
    const coll = database.db.collection('ordered');
    await coll.createIndex({ k: 1 }, { unique: true });
    const error = await coll
      .insertMany([{ k: 1 }, { k: 2 }, { k: 1 }, { k: 3 }])
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 11000 });
    expect(
      await coll
        .find({}, { sort: { k: 1 } })
        .map((d) => d.k as number)
        .toArray(),
    ).toEqual([1, 2]);
  });
});

describe('TTL indexes', () => {
  // https://www.mongodb.com/docs/manual/core/index-ttl/ (real MongoDB sweeps every 60 s)
  it('removes documents whose date is older than expireAfterSeconds', async () => {
    const codes = database.db.collection('codes');
    await codes.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0 });
    await codes.insertMany([
      { code: 'old', expiresAt: new Date(Date.now() - 60_000) },
      { code: 'fresh', expiresAt: new Date(Date.now() + 3_600_000) },
    ]);

    await eventually(async () => (await codes.countDocuments({ code: 'old' })) === 0, 75_000);

    expect(
      await codes
        .find()
        .map((d) => d.code as string)
        .toArray(),
    ).toEqual(['fresh']);
  }, 90_000);
});

describe('queries and cursors', () => {
  // https://www.mongodb.com/docs/manual/reference/method/cursor.sort/
  it('sorts, skips and limits like MongoDB, including mixed types and dates', async () => {
    const coll = database.db.collection('sorting');
    await coll.insertMany([
      { n: 5, at: new Date('2026-01-05') },
      { n: 1, at: new Date('2026-01-01') },
      { n: 4, at: new Date('2026-01-04') },
      { n: 2, at: new Date('2026-01-02') },
      { n: 3, at: new Date('2026-01-03') },
    ]);
    const page = await coll
      .find({ n: { $gte: 2 } }, { projection: { _id: 0, n: 1 } })
      .sort({ at: -1 })
      .skip(1)
      .limit(2)
      .toArray();
    expect(page).toEqual([{ n: 4 }, { n: 3 }]);
    expect(await coll.countDocuments({ n: { $in: [1, 2, 9] } })).toBe(2);
    expect((await coll.distinct('n', { n: { $lt: 3 } })).sort()).toEqual([1, 2]);
  });

  // https://www.mongodb.com/docs/manual/reference/command/getMore/
  it('returns a large result over several getMore batches without losing or repeating documents', async () => {
    const getMores: CommandStartedEvent[] = [];
    const monitored = new MongoClient(database.uri, { monitorCommands: true });
    monitored.on('commandStarted', (event) => {
      if (event.commandName === 'getMore') getMores.push(event);
    });
    await monitored.connect();
    try {
      const coll = monitored.db(database.dbName).collection('many');
      await coll.insertMany(Array.from({ length: 250 }, (_, i) => ({ i })));

      const seen = await coll.find({}, { batchSize: 40, sort: { i: 1 } }).toArray();

      expect(seen.map((d) => d.i as number)).toEqual(Array.from({ length: 250 }, (_, i) => i));
      expect(getMores.length).toBeGreaterThanOrEqual(6);
    } finally {
      await monitored.close();
    }
  });

  // https://www.mongodb.com/docs/manual/reference/method/db.collection.bulkWrite/
  it('applies a bulkWrite of mixed operations and reports the counts', async () => {
    const coll = database.db.collection('bulk');
    await coll.insertMany([
      { k: 'a', v: 1 },
      { k: 'b', v: 1 },
    ]);
    const result = await coll.bulkWrite([
      { insertOne: { document: { k: 'c', v: 1 } } },
      { updateOne: { filter: { k: 'a' }, update: { $inc: { v: 1 } } } },
      { updateOne: { filter: { k: 'z' }, update: { $set: { v: 9 } }, upsert: true } },
      { deleteOne: { filter: { k: 'b' } } },
    ]);
    expect(result).toMatchObject({
      insertedCount: 1,
      matchedCount: 1,
      modifiedCount: 1,
      upsertedCount: 1,
      deletedCount: 1,
    });
    expect(await coll.find({}, { sort: { k: 1 }, projection: { _id: 0 } }).toArray()).toEqual([
      { k: 'a', v: 2 },
      { k: 'c', v: 1 },
      { k: 'z', v: 9 },
    ]);
  });
});

describe('aggregation', () => {
  // https://www.mongodb.com/docs/manual/reference/operator/aggregation-pipeline/
  it('runs the stages the reports use: $match $group $sort $project $lookup $unwind $count', async () => {
    const accounts = database.db.collection('agg_accounts');
    const usage = database.db.collection('agg_usage');
    await accounts.insertMany([
      { _id: 'a1' as never, plan: 'starter' },
      { _id: 'a2' as never, plan: 'personal' },
      { _id: 'a3' as never, plan: 'starter' },
    ]);
    await usage.insertMany([
      { accountId: 'a1', bytes: 100, day: '2026-11-25' },
      { accountId: 'a1', bytes: 50, day: '2026-11-26' },
      { accountId: 'a2', bytes: 500, day: '2026-11-26' },
      { accountId: 'a3', bytes: 1, day: '2026-11-20' },
    ]);

    const byPlan = await usage
      .aggregate([
        { $match: { day: { $gte: '2026-11-25' } } },
        {
          $lookup: {
            from: 'agg_accounts',
            localField: 'accountId',
            foreignField: '_id',
            as: 'account',
          },
        },
        { $unwind: '$account' },
        { $group: { _id: '$account.plan', bytes: { $sum: '$bytes' }, rows: { $sum: 1 } } },
        { $sort: { bytes: -1 } },
        { $project: { _id: 0, plan: '$_id', bytes: 1, rows: 1 } },
      ])
      .toArray();
    expect(byPlan).toEqual([
      { plan: 'personal', bytes: 500, rows: 1 },
      { plan: 'starter', bytes: 150, rows: 2 },
    ]);

    const [counted] = await accounts
      .aggregate([{ $match: { plan: 'starter' } }, { $count: 'starters' }])
      .toArray();
    expect(counted).toEqual({ starters: 2 });
  });
});
