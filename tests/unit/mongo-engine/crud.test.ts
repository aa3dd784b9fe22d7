import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Binary, Decimal128, Long, MongoClient, ObjectId } from 'mongodb';
import type { Db, Document } from 'mongodb';
import { startMongoEngine } from '../../../lib/mongo-engine/index.js';
import type { MongoEngine } from '../../../lib/mongo-engine/index.js';

/** Update documents typed loosely: the driver's typings reject operators on untyped fields. */
const u = (update: Document): Document => update;

let engine: MongoEngine;
let client: MongoClient;
let db: Db;

beforeAll(async () => {
  engine = await startMongoEngine();
  client = new MongoClient(`${engine.uri}crud`);
  db = client.db();
});

afterAll(async () => {
  await client.close();
  await engine.stop();
});

describe('mongo-engine CRUD through the real driver', () => {
  it('round-trips ObjectId, Long, Decimal128, Date, Binary and nested values', async () => {
    const coll = db.collection('types');
    const doc = {
      _id: new ObjectId(),
      big: Long.fromString('9007199254740993'),
      small: 42,
      price: Decimal128.fromString('12.50'),
      at: new Date('2024-01-02T03:04:05.678Z'),
      bytes: new Binary(Buffer.from('hello')),
      nested: { list: [1, 'two', { three: 3 }], empty: {} },
      nothing: null,
    };
    await coll.insertOne(doc);
    const back = await coll.findOne({ _id: doc._id }, { promoteLongs: false });
    expect(back?._id.equals(doc._id)).toBe(true);
    expect(String(back?.big)).toBe('9007199254740993');
    expect(String(back?.price)).toBe('12.50');
    expect(back?.at).toEqual(doc.at);
    expect(Buffer.from((back?.bytes as Binary).buffer).toString()).toBe('hello');
    expect(back?.nested).toEqual(doc.nested);
    expect(back?.nothing).toBeNull();
  });

  it('sorts mixed types in MongoDB order and dates and ObjectIds by value', async () => {
    const coll = db.collection('order');
    const early = new ObjectId('000000000000000000000001');
    const late = new ObjectId('ffffffffffffffffffffffff');
    await coll.insertMany([
      { k: 1, v: true },
      { k: 2, v: late },
      { k: 3, v: 'text' },
      { k: 4, v: 10 },
      { k: 5, v: 9.5 },
      { k: 6, v: new Date(5) },
      { k: 7, v: null },
      { k: 8, v: early },
      { k: 9, v: new Date(1) },
      { k: 10 },
    ]);
    const ks = (await coll.find({}).sort({ v: 1, k: 1 }).toArray()).map((d): unknown => d.k);
    // null/missing < numbers < strings < ObjectId < bool < Date
    expect(ks).toEqual([7, 10, 5, 4, 3, 8, 2, 1, 9, 6]);
  });

  it('supports filter, sort, skip, limit and projection on find', async () => {
    const coll = db.collection('people');
    await coll.insertMany(
      Array.from({ length: 20 }, (_, i) => ({
        name: `p${i}`,
        age: i,
        tags: i % 2 ? ['odd'] : ['even'],
      })),
    );
    const page = await coll
      .find({ tags: 'odd', age: { $gte: 5 } }, { projection: { _id: 0, name: 1 } })
      .sort({ age: -1 })
      .skip(1)
      .limit(3)
      .toArray();
    expect(page).toEqual([{ name: 'p17' }, { name: 'p15' }, { name: 'p13' }]);
    const natural = await coll.find({}).sort({ $natural: -1 }).limit(2).toArray();
    expect(natural.map((d): unknown => d.name)).toEqual(['p19', 'p18']);
  });

  it('applies update operators including dotted paths, arrays and positional $', async () => {
    const coll = db.collection('ops');
    const { insertedId } = await coll.insertOne({
      n: 1,
      m: 3,
      s: 'x',
      list: [3, 1],
      items: [
        { sku: 'a', qty: 1 },
        { sku: 'b', qty: 1 },
      ],
      old: 'gone',
    });
    await coll.updateOne(
      { _id: insertedId },
      u({
        $inc: { n: 2 },
        $mul: { m: 2 },
        $set: { 'deep.path': true },
        $push: { list: { $each: [5, 2], $sort: 1, $slice: 3 } },
        $rename: { old: 'renamed' },
        $currentDate: { touched: true },
        $min: { low: 0 },
        $max: { high: 9 },
      }),
    );
    await coll.updateOne({ _id: insertedId, 'items.sku': 'b' }, { $inc: { 'items.$.qty': 5 } });
    await coll.updateOne(
      { _id: insertedId },
      u({ $addToSet: { list: { $each: [1, 7] } }, $unset: { s: '' } }),
    );
    await coll.updateOne(
      { _id: insertedId },
      u({ $pull: { list: { $gt: 5 } }, $pop: { items: -1 } }),
    );
    const doc = await coll.findOne({ _id: insertedId });
    expect(doc).toMatchObject({
      n: 3,
      m: 6,
      deep: { path: true },
      list: [1, 2, 3],
      renamed: 'gone',
      low: 0,
      high: 9,
      items: [{ sku: 'b', qty: 6 }],
    });
    expect(doc?.touched).toBeInstanceOf(Date);
    expect(doc).not.toHaveProperty('s');
    expect(doc).not.toHaveProperty('old');
  });

  it('updates with arrayFilters', async () => {
    const coll = db.collection('arrayFilters');
    const { insertedId } = await coll.insertOne({ grades: [{ g: 80 }, { g: 95 }, { g: 70 }] });
    await coll.updateOne(
      { _id: insertedId },
      { $set: { 'grades.$[hi].top': true } },
      { arrayFilters: [{ 'hi.g': { $gte: 90 } }] },
    );
    const doc = await coll.findOne({ _id: insertedId });
    expect(doc?.grades).toEqual([{ g: 80 }, { g: 95, top: true }, { g: 70 }]);
  });

  it('reports n, nModified and upserted ids like MongoDB', async () => {
    const coll = db.collection('counts');
    await coll.insertMany([
      { k: 1, v: 0 },
      { k: 1, v: 0 },
      { k: 2, v: 5 },
    ]);
    const many = await coll.updateMany({ k: 1 }, { $set: { v: 1 } });
    expect(many).toMatchObject({ matchedCount: 2, modifiedCount: 2, upsertedCount: 0 });
    const same = await coll.updateMany({ k: 1 }, { $set: { v: 1 } });
    expect(same).toMatchObject({ matchedCount: 2, modifiedCount: 0 });
    const up = await coll.updateOne(
      { k: 3, 'meta.src': 'x' },
      { $set: { v: 9 }, $setOnInsert: { created: true } },
      { upsert: true },
    );
    expect(up.upsertedCount).toBe(1);
    const inserted = await coll.findOne({ _id: up.upsertedId ?? undefined });
    expect(inserted).toMatchObject({ k: 3, meta: { src: 'x' }, v: 9, created: true });
    const again = await coll.updateOne(
      { k: 3 },
      { $set: { v: 10 }, $setOnInsert: { created: false } },
      { upsert: true },
    );
    expect(again).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
    expect((await coll.findOne({ k: 3 }))?.created).toBe(true);
  });

  it('replaces documents and keeps _id immutable', async () => {
    const coll = db.collection('replace');
    const { insertedId } = await coll.insertOne({ a: 1, b: 2 });
    await coll.replaceOne({ _id: insertedId }, { c: 3 });
    expect(await coll.findOne({ _id: insertedId })).toEqual({ _id: insertedId, c: 3 });
    const error = await coll
      .updateOne({ _id: insertedId }, { $set: { _id: new ObjectId() } })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 66 });
    const upserted = await coll.replaceOne(
      { name: 'new' },
      { name: 'new', x: 1 },
      { upsert: true },
    );
    expect(upserted.upsertedCount).toBe(1);
  });

  it('refuses type-mismatched operators instead of silently ignoring them', async () => {
    const coll = db.collection('mismatch');
    const { insertedId } = await coll.insertOne({ s: 'text', n: 1 });
    await expect(coll.updateOne({ _id: insertedId }, { $inc: { s: 1 } })).rejects.toMatchObject({
      code: 14,
    });
    await expect(coll.updateOne({ _id: insertedId }, u({ $push: { n: 1 } }))).rejects.toMatchObject(
      {
        code: 2,
      },
    );
    await expect(coll.updateOne({ _id: insertedId }, u({ $frob: { n: 1 } }))).rejects.toMatchObject(
      {
        code: 9,
      },
    );
    await expect(coll.updateOne({ _id: insertedId }, [{ $set: { n: 2 } }])).rejects.toThrow(
      /pipeline-style update/,
    );
    await expect(coll.find({ n: { $near: [0, 0] } }).toArray()).rejects.toThrow(/\$near/);
    await expect(coll.aggregate([{ $out: 'x' }]).toArray()).rejects.toThrow(/\$out/);
    await expect(coll.aggregate([{ $bogus: {} }]).toArray()).rejects.toMatchObject({ code: 40324 });
    expect(await coll.findOne({ _id: insertedId })).toMatchObject({ s: 'text', n: 1 });
  });

  it('deletes one or many', async () => {
    const coll = db.collection('deletes');
    await coll.insertMany([{ k: 1 }, { k: 1 }, { k: 1 }, { k: 2 }]);
    expect((await coll.deleteOne({ k: 1 })).deletedCount).toBe(1);
    expect((await coll.deleteMany({ k: 1 })).deletedCount).toBe(2);
    expect(await coll.countDocuments()).toBe(1);
  });

  it('findOneAndUpdate/Delete/Replace return the right document and upsert', async () => {
    const coll = db.collection('fam');
    await coll.insertMany([
      { job: 'a', prio: 2, state: 'queued' },
      { job: 'b', prio: 5, state: 'queued' },
    ]);
    const before = await coll.findOneAndUpdate(
      { state: 'queued' },
      { $set: { state: 'locked' } },
      { sort: { prio: -1 } },
    );
    expect(before).toMatchObject({ job: 'b', state: 'queued' });
    const after = await coll.findOneAndUpdate(
      { state: 'queued' },
      { $set: { state: 'locked' } },
      { sort: { prio: -1 }, returnDocument: 'after', projection: { _id: 0, job: 1, state: 1 } },
    );
    expect(after).toEqual({ job: 'a', state: 'locked' });
    expect(await coll.findOneAndUpdate({ state: 'queued' }, { $set: { state: 'x' } })).toBeNull();
    const created = await coll.findOneAndUpdate(
      { job: 'c' },
      { $setOnInsert: { prio: 1 }, $set: { state: 'new' } },
      { upsert: true, returnDocument: 'after', includeResultMetadata: true },
    );
    expect(created.value).toMatchObject({ job: 'c', prio: 1, state: 'new' });
    expect(created.lastErrorObject).toMatchObject({ n: 1, updatedExisting: false });
    expect(created.lastErrorObject?.upserted).toBeInstanceOf(ObjectId);
    const removed = await coll.findOneAndDelete({ job: 'c' });
    expect(removed).toMatchObject({ job: 'c' });
    const replaced = await coll.findOneAndReplace(
      { job: 'a' },
      { job: 'a2' },
      { returnDocument: 'after' },
    );
    expect(replaced).toMatchObject({ job: 'a2' });
  });

  it('batches cursors with batchSize and getMore and can kill them', async () => {
    const coll = db.collection('batches');
    await coll.insertMany(Array.from({ length: 250 }, (_, i) => ({ i })));
    interface CursorReply {
      cursor: { id: Long; firstBatch?: Document[]; nextBatch?: Document[] };
    }
    const first = (await db.command({
      find: 'batches',
      filter: {},
      sort: { i: 1 },
    })) as CursorReply;
    const cursorId = first.cursor.id;
    expect(first.cursor.firstBatch).toHaveLength(101);
    expect(cursorId).toBeInstanceOf(Long);
    expect(cursorId.isZero()).toBe(false);
    const more = (await db.command({
      getMore: cursorId,
      collection: 'batches',
      batchSize: 50,
    })) as CursorReply;
    expect((more.cursor.nextBatch ?? []).map((d): unknown => d.i)).toEqual(
      Array.from({ length: 50 }, (_, i) => 101 + i),
    );
    const killed = await db.command({ killCursors: 'batches', cursors: [cursorId] });
    expect(killed.cursorsKilled).toHaveLength(1);
    await expect(db.command({ getMore: cursorId, collection: 'batches' })).rejects.toMatchObject({
      code: 43,
    });
    const all = await coll.find({}).batchSize(7).toArray();
    expect(all).toHaveLength(250);
    const cursor = coll.find({}).batchSize(10);
    await cursor.next();
    await cursor.close();
    const agg = await coll
      .aggregate([{ $match: { i: { $lt: 30 } } }], { cursor: { batchSize: 4 } })
      .toArray();
    expect(agg).toHaveLength(30);
  });

  it('counts and lists distinct values', async () => {
    const coll = db.collection('distinct');
    await coll.insertMany([{ c: 'x', t: ['a', 'b'] }, { c: 'y', t: ['b'] }, { c: 'x' }]);
    expect(await coll.countDocuments({ c: 'x' })).toBe(2);
    expect(await coll.estimatedDocumentCount()).toBe(3);
    expect(await coll.distinct('c')).toEqual(['x', 'y']);
    expect(await coll.distinct('t', { c: 'x' })).toEqual(['a', 'b']);
  });

  it('runs aggregation pipelines with $group, $lookup, $unwind, $facet and friends', async () => {
    const orders = db.collection('orders');
    const users = db.collection('users');
    await users.insertMany([
      { _id: 'u1' as unknown as ObjectId, name: 'Ada' },
      { _id: 'u2' as unknown as ObjectId, name: 'Bo' },
    ]);
    await orders.insertMany([
      { user: 'u1', amount: 10, items: ['x', 'y'] },
      { user: 'u1', amount: 5, items: ['x'] },
      { user: 'u2', amount: 7, items: [] },
    ]);
    const totals = await orders
      .aggregate([
        { $match: { amount: { $gt: 1 } } },
        { $group: { _id: '$user', total: { $sum: '$amount' }, n: { $sum: 1 } } },
        { $lookup: { from: 'users', localField: '_id', foreignField: '_id', as: 'user' } },
        { $unwind: '$user' },
        { $project: { _id: 0, name: '$user.name', total: 1, n: 1 } },
        { $sort: { total: -1 } },
      ])
      .toArray();
    expect(totals).toEqual([
      { total: 15, n: 2, name: 'Ada' },
      { total: 7, n: 1, name: 'Bo' },
    ]);
    const [facet] = await orders
      .aggregate([
        { $unwind: '$items' },
        { $addFields: { one: 1 } },
        { $unset: 'user' },
        {
          $facet: {
            count: [{ $count: 'n' }],
            firstTwo: [{ $skip: 0 }, { $limit: 2 }, { $project: { _id: 0, items: 1 } }],
          },
        },
      ])
      .toArray();
    expect(facet).toEqual({ count: [{ n: 3 }], firstTwo: [{ items: 'x' }, { items: 'y' }] });
    // The pipeline copied what it changed: stored documents are untouched.
    expect(await orders.findOne({ amount: 10 }, { projection: { _id: 0 } })).toEqual({
      user: 'u1',
      amount: 10,
      items: ['x', 'y'],
    });
  });

  it('creates, lists and drops collections and databases', async () => {
    const other = client.db('crud_catalog');
    await other.createCollection('alpha');
    await other.collection('beta').insertOne({});
    await expect(other.createCollection('alpha')).rejects.toMatchObject({ code: 48 });
    const names = (await other.listCollections({}, { nameOnly: true }).toArray()).map(
      (c) => c.name,
    );
    expect(names).toEqual(['alpha', 'beta']);
    const filtered = await other.listCollections({ name: 'beta' }).toArray();
    expect(filtered).toHaveLength(1);
    expect(await other.collection('alpha').drop()).toBe(true);
    const dbs = await client.db('admin').admin().listDatabases();
    expect(dbs.databases.map((d) => d.name)).toContain('crud_catalog');
    await other.dropDatabase();
    const after = await client.db('admin').admin().listDatabases();
    expect(after.databases.map((d) => d.name)).not.toContain('crud_catalog');
  });
});
