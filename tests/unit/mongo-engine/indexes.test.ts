import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoBulkWriteError, MongoClient, MongoServerError } from 'mongodb';
import type { Db } from 'mongodb';
import mongoose from 'mongoose';
import { startMongoEngine } from '../../../lib/mongo-engine/index.js';
import type { MongoEngine } from '../../../lib/mongo-engine/index.js';

let engine: MongoEngine;
let client: MongoClient;
let db: Db;

beforeAll(async () => {
  engine = await startMongoEngine({ ttlSweepIntervalMs: 20 });
  client = new MongoClient(`${engine.uri}indexes`);
  db = client.db();
});

afterAll(async () => {
  await client.close();
  await engine.stop();
});

async function pollUntil(condition: () => Promise<boolean>, attempts = 200): Promise<boolean> {
  for (let i = 0; i < attempts; i += 1) {
    if (await condition()) return true;
    await new Promise<void>((resolve) => setImmediate(resolve));
    await client.db('admin').command({ ping: 1 });
  }
  return false;
}

describe('mongo-engine indexes', () => {
  it('rejects a duplicate _id with an E11000 write error shaped like MongoDB', async () => {
    const coll = db.collection('ids');
    await coll.insertOne({ _id: 'a' as never });
    const error = await coll.insertOne({ _id: 'a' as never }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MongoServerError);
    expect(error).toMatchObject({
      code: 11000,
      message:
        'E11000 duplicate key error collection: indexes.ids index: _id_ dup key: { _id: "a" }',
      keyPattern: { _id: 1 },
      keyValue: { _id: 'a' },
    });
  });

  it('enforces unique indexes on insert and update, with keyPattern and keyValue', async () => {
    const coll = db.collection('users');
    await coll.createIndex({ email: 1 }, { unique: true });
    await coll.insertOne({ email: 'a@x.io', n: 1 });
    const { insertedId } = await coll.insertOne({ email: 'b@x.io', n: 2 });
    await expect(coll.insertOne({ email: 'a@x.io' })).rejects.toMatchObject({
      code: 11000,
      keyPattern: { email: 1 },
      keyValue: { email: 'a@x.io' },
      message:
        'E11000 duplicate key error collection: indexes.users index: email_1 dup key: { email: "a@x.io" }',
    });
    await expect(
      coll.updateOne({ _id: insertedId }, { $set: { email: 'a@x.io' } }),
    ).rejects.toMatchObject({ code: 11000 });
    expect(await coll.findOne({ _id: insertedId })).toMatchObject({ email: 'b@x.io' });
    const fam = await coll
      .findOneAndUpdate({ _id: insertedId }, { $set: { email: 'a@x.io' } })
      .catch((e: unknown) => e);
    expect(fam).toBeInstanceOf(MongoServerError);
    expect(fam).toMatchObject({
      code: 11000,
      codeName: 'DuplicateKey',
      keyValue: { email: 'a@x.io' },
    });
  });

  it('stops an ordered batch at the first duplicate and continues an unordered one', async () => {
    const ordered = db.collection('ordered');
    const error = await ordered
      .insertMany([{ _id: 1 }, { _id: 1 }, { _id: 2 }] as never[], { ordered: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MongoBulkWriteError);
    expect((error as MongoBulkWriteError).writeErrors).toMatchObject([{ index: 1, code: 11000 }]);
    expect(await ordered.countDocuments()).toBe(1);
    const unordered = db.collection('unordered');
    await unordered
      .insertMany([{ _id: 1 }, { _id: 1 }, { _id: 2 }] as never[], { ordered: false })
      .catch(() => undefined);
    expect(await unordered.countDocuments()).toBe(2);
  });

  it('fails to build a unique index over existing duplicates', async () => {
    const coll = db.collection('dupes');
    await coll.insertMany([{ k: 1 }, { k: 1 }]);
    await expect(coll.createIndex({ k: 1 }, { unique: true })).rejects.toMatchObject({
      code: 11000,
    });
    expect((await coll.indexes()).map((i) => i.name)).toEqual(['_id_']);
  });

  it('supports compound, sparse and partial unique indexes', async () => {
    const coll = db.collection('compound');
    await coll.createIndex({ account: 1, period: 1 }, { unique: true });
    await coll.insertOne({ account: 'a', period: '2024-01' });
    await coll.insertOne({ account: 'a', period: '2024-02' });
    await expect(coll.insertOne({ account: 'a', period: '2024-01' })).rejects.toMatchObject({
      code: 11000,
      keyValue: { account: 'a', period: '2024-01' },
      keyPattern: { account: 1, period: 1 },
    });
    const sparse = db.collection('sparse');
    await sparse.createIndex({ ref: 1 }, { unique: true, sparse: true });
    await sparse.insertMany([{}, {}, { ref: 'x' }]);
    await expect(sparse.insertOne({ ref: 'x' })).rejects.toMatchObject({ code: 11000 });
    const partial = db.collection('partial');
    await partial.createIndex(
      { key: 1 },
      { unique: true, partialFilterExpression: { live: true } },
    );
    await partial.insertMany([
      { key: 1, live: false },
      { key: 1, live: false },
      { key: 1, live: true },
    ]);
    await expect(partial.insertOne({ key: 1, live: true })).rejects.toMatchObject({ code: 11000 });
    const missing = db.collection('missingUnique');
    await missing.createIndex({ code: 1 }, { unique: true });
    await missing.insertOne({});
    await expect(missing.insertOne({})).rejects.toMatchObject({
      code: 11000,
      keyValue: { code: null },
    });
  });

  it('lists, conflicts and drops indexes like MongoDB', async () => {
    const coll = db.collection('listing');
    await coll.createIndex({ a: 1 }, { name: 'by_a' });
    await coll.createIndex({ a: 1 }, { name: 'by_a' });
    await expect(coll.createIndex({ b: 1 }, { name: 'by_a' })).rejects.toMatchObject({ code: 86 });
    await expect(coll.createIndex({ a: 1 }, { name: 'other', unique: true })).rejects.toMatchObject(
      { code: 85 },
    );
    await expect(coll.createIndex({ t: 'text' })).rejects.toThrow(/text/);
    await coll.createIndex({ at: 1 }, { expireAfterSeconds: 60 });
    expect(await coll.indexes()).toEqual([
      { v: 2, key: { _id: 1 }, name: '_id_' },
      { v: 2, key: { a: 1 }, name: 'by_a' },
      { v: 2, key: { at: 1 }, name: 'at_1', expireAfterSeconds: 60 },
    ]);
    await coll.dropIndex('by_a');
    await expect(coll.dropIndex('by_a')).rejects.toMatchObject({ code: 27 });
    await expect(coll.dropIndex('_id_')).rejects.toMatchObject({ code: 72 });
    await coll.dropIndexes();
    expect((await coll.indexes()).map((i) => i.name)).toEqual(['_id_']);
  });

  it('finds by indexed equality after updates move documents between keys', async () => {
    const coll = db.collection('moving');
    await coll.createIndex({ status: 1, at: 1 });
    await coll.insertMany(Array.from({ length: 50 }, (_, i) => ({ i, status: 'new', at: i })));
    await coll.updateMany({ i: { $lt: 10 } }, { $set: { status: 'done' } });
    expect(await coll.countDocuments({ status: 'done' })).toBe(10);
    expect(await coll.countDocuments({ status: 'new' })).toBe(40);
    expect(await coll.countDocuments({ status: { $in: ['new', 'done'] } })).toBe(50);
    await coll.deleteMany({ status: 'done' });
    expect(await coll.countDocuments({ status: 'done' })).toBe(0);
  });

  // serverStatus().metrics.queryExecutor.scannedObjects counts documents examined, as on mongod:
  // https://www.mongodb.com/docs/manual/reference/command/serverStatus/#mongodb-serverstatus-serverstatus.metrics.queryExecutor.scannedObjects
  it('answers an equality on an indexed field from the index instead of scanning', async () => {
    const coll = db.collection('lookups');
    await coll.createIndex({ email: 1 }, { unique: true });
    await coll.insertMany(
      Array.from({ length: 2000 }, (_, i) => ({ email: `u${i}@example.com`, plan: 'starter' })),
    );
    const scanned = async (): Promise<number> => {
      const status = await client.db('admin').command({ serverStatus: 1 });
      return (status as { metrics: { queryExecutor: { scannedObjects: number } } }).metrics
        .queryExecutor.scannedObjects;
    };

    const before = await scanned();
    expect(await coll.findOne({ email: 'u1234@example.com' })).toMatchObject({ plan: 'starter' });
    await coll.updateOne({ email: 'u77@example.com' }, { $set: { plan: 'personal' } });
    const indexed = (await scanned()) - before;

    const beforeScan = await scanned();
    expect(await coll.countDocuments({ plan: 'personal' })).toBe(1);
    const unindexed = (await scanned()) - beforeScan;

    expect(indexed).toBe(2);
    expect(unindexed).toBe(2000);
  });

  it('expires documents through a TTL index, including arrays of dates', async () => {
    const coll = db.collection('ttl');
    await coll.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0 });
    const past = new Date(Date.now() - 1000);
    const future = new Date(Date.now() + 3_600_000);
    await coll.insertMany([
      { k: 'old', expiresAt: past },
      { k: 'new', expiresAt: future },
      { k: 'mixed', expiresAt: [future, past] },
      { k: 'notADate', expiresAt: 'tomorrow' },
    ]);
    const expired = await pollUntil(async () => (await coll.countDocuments()) === 2);
    expect(expired).toBe(true);
    expect((await coll.find({}).toArray()).map((d) => String(d.k)).sort()).toEqual([
      'new',
      'notADate',
    ]);
  });

  it('works with mongoose: unique errors, syncIndexes and model CRUD', async () => {
    const conn = await mongoose.createConnection(`${engine.uri}indexes_mongoose`).asPromise();
    try {
      const schema = new mongoose.Schema({
        email: { type: String, required: true, unique: true },
        balanceMinor: { type: Number, min: 0, default: 0 },
        tags: [String],
      });
      const Account = conn.model('Account', schema);
      await Account.init();
      await Account.create({ email: 'a@x.io' });
      const error = await Account.create({ email: 'a@x.io' }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 11000, keyValue: { email: 'a@x.io' } });
      const updated = await Account.findOneAndUpdate(
        { email: 'a@x.io' },
        { $inc: { balanceMinor: 500 }, $push: { tags: 'vip' } },
        { new: true },
      ).lean();
      expect(updated).toMatchObject({ balanceMinor: 500, tags: ['vip'] });
      schema.index({ balanceMinor: -1 });
      const Synced = conn.model('Synced', schema, 'accounts');
      await Synced.syncIndexes();
      const names = (await Synced.listIndexes()).map((i: { name: string }) => i.name).sort();
      expect(names).toEqual(['_id_', 'balanceMinor_-1', 'email_1']);
      expect(await Account.countDocuments({ tags: 'vip' })).toBe(1);
    } finally {
      await conn.close();
    }
  });
});
