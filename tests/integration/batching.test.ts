/**
 * Coalesced database calls (models/batching.ts): calls made together share one
 * command, and each caller still gets exactly its own answer or its own error.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose, { Schema, type Connection } from 'mongoose';
import { findAllByKey, findOneByKey, insertOne, updateOne } from '../../models/batching.js';
import { isDuplicateKeyError } from '../../models/errors.js';
import { useTestDatabase } from '../support/database.js';

const database = useTestDatabase();

interface Item {
  _id: mongoose.Types.ObjectId;
  code: string;
  group: string;
  count: number;
  createdAt: Date;
  __v: number;
}

const itemSchema = new Schema(
  {
    code: { type: String, required: true, unique: true },
    group: { type: String, required: true },
    count: { type: Number, default: 0, min: 0 },
  },
  { timestamps: true, strict: 'throw' },
);

let connection: Connection;
let commands: string[] = [];
let Item: mongoose.Model<Item>;

beforeAll(async () => {
  connection = mongoose.createConnection(database.uri, {
    dbName: database.dbName,
    monitorCommands: true,
  });
  await connection.asPromise();
  connection.getClient().on('commandStarted', (event) => {
    if (event.commandName !== 'createIndexes') commands.push(event.commandName);
  });
  Item = connection.model<Item>('BatchItem', itemSchema);
  await Item.init();
});

afterAll(async () => {
  await connection.close();
});

async function counted<T>(work: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
  commands = [];
  const result = await work();
  return { result, commands };
}

describe('coalesced inserts', () => {
  it('stores 40 inserts in one command, with defaults and timestamps, and fails only the duplicates', async () => {
    const codes = Array.from({ length: 40 }, (_, i) => `c${i % 30}`);
    const { result, commands: sent } = await counted(() =>
      Promise.allSettled(codes.map((code) => insertOne<Item>(Item, { code, group: 'g' }))),
    );
    expect(sent).toEqual(['insert']);
    const stored = result.filter((r) => r.status === 'fulfilled');
    const refused = result.filter((r) => r.status === 'rejected');
    expect(stored).toHaveLength(30);
    expect(refused).toHaveLength(10);
    for (const r of refused) expect(isDuplicateKeyError(r.reason)).toBe(true);
    const first = await Item.findOne({ code: 'c0' }).lean();
    expect(first).toMatchObject({ group: 'g', count: 0, __v: 0 });
    expect(first?.createdAt).toBeInstanceOf(Date);
  });

  it('gives a document that fails validation its own error and stores the others', async () => {
    const [bad, good] = await Promise.allSettled([
      insertOne<Item>(Item, { code: 'v1', group: 'g', count: -1 }),
      insertOne<Item>(Item, { code: 'v2', group: 'g' }),
    ]);
    expect(bad?.status).toBe('rejected');
    expect(good?.status).toBe('fulfilled');
    expect(await Item.countDocuments({ code: { $in: ['v1', 'v2'] } })).toBe(1);
  });

  it('refuses a document with a field the schema does not know, alone', async () => {
    const [bad, good] = await Promise.allSettled([
      insertOne<Item>(Item, { code: 's1', group: 'g', colour: 'red' }),
      insertOne<Item>(Item, { code: 's2', group: 'g' }),
    ]);
    expect(bad?.status === 'rejected' && bad.reason).toBeInstanceOf(mongoose.Error.StrictModeError);
    expect(good?.status).toBe('fulfilled');
    expect(await Item.countDocuments({ code: { $in: ['s1', 's2'] } })).toBe(1);
  });
});

describe('coalesced lookups', () => {
  beforeAll(async () => {
    await Item.insertMany(
      Array.from({ length: 10 }, (_, i) => ({ code: `k${i}`, group: i % 2 ? 'odd' : 'even' })),
    );
  });

  it('answers 12 lookups by key with one find, null for the unknown ones', async () => {
    const keys = [...Array.from({ length: 10 }, (_, i) => `k${i}`), 'nope', 'k3'];
    const { result, commands: sent } = await counted(() =>
      Promise.all(keys.map((code) => findOneByKey<Item>(Item, 'code', code))),
    );
    expect(sent).toEqual(['find']);
    expect(result.map((doc) => doc?.code ?? null)).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `k${i}`),
      null,
      'k3',
    ]);
  });

  it('returns every document of a non-unique key to each caller', async () => {
    const [even, odd] = await Promise.all([
      findAllByKey<Item>(Item, 'group', 'even', { projection: { code: 1 } }),
      findAllByKey<Item>(Item, 'group', 'odd', { projection: { code: 1 } }),
    ]);
    expect(even.map((d) => d.code).sort()).toEqual(['k0', 'k2', 'k4', 'k6', 'k8']);
    expect(odd).toHaveLength(5);
    expect(odd[0]).not.toHaveProperty('count');
  });
});

describe('coalesced updates', () => {
  it('applies 20 updates and upserts in one command and says which upserted', async () => {
    await Item.insertMany(Array.from({ length: 10 }, (_, i) => ({ code: `u${i}`, group: 'u' })));
    const inputs = Array.from({ length: 20 }, (_, i) => ({
      filter: { code: `u${i}` },
      update: { $inc: { count: 1 }, $setOnInsert: { group: 'new' } },
      upsert: true,
    }));
    const { result, commands: sent } = await counted(() =>
      Promise.all(inputs.map((input) => updateOne(Item, input))),
    );
    expect(sent).toEqual(['update']);
    expect(result.map((r) => r.upserted)).toEqual([
      ...Array<boolean>(10).fill(false),
      ...Array<boolean>(10).fill(true),
    ]);
    const docs = await Item.find({ code: /^u/ }).lean();
    expect(docs).toHaveLength(20);
    expect(docs.every((d) => d.count === 1)).toBe(true);
  });

  it('rejects only the statement that hit a unique index', async () => {
    await Item.insertMany([
      { code: 'x1', group: 'x' },
      { code: 'x2', group: 'x' },
    ]);
    const [clash, fine] = await Promise.allSettled([
      updateOne(Item, { filter: { code: 'x1' }, update: { $set: { code: 'x2' } } }),
      updateOne(Item, { filter: { code: 'x2' }, update: { $inc: { count: 5 } } }),
    ]);
    expect(clash?.status === 'rejected' && isDuplicateKeyError(clash.reason)).toBe(true);
    expect(fine?.status).toBe('fulfilled');
    expect((await Item.findOne({ code: 'x2' }).lean())?.count).toBe(5);
  });
});
