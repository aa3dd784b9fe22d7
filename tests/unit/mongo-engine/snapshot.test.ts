import { describe, expect, it } from '@jest/globals';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Decimal128, MongoClient, ObjectId } from 'mongodb';
import { pino } from 'pino';
import { startMongoEngine } from '../../../lib/mongo-engine/index.js';

describe('mongo-engine lifecycle and snapshot', () => {
  it('keeps documents and indexes across a restart from the snapshot file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mongo-engine-'));
    const snapshotPath = join(dir, 'data', 'engine.snapshot');
    try {
      const id = new ObjectId();
      const first = await startMongoEngine({ snapshotPath });
      const writer = new MongoClient(`${first.uri}keep`);
      await writer.db().collection('accounts').createIndex({ email: 1 }, { unique: true });
      await writer
        .db()
        .collection('accounts')
        .insertOne({
          _id: id,
          email: 'a@x.io',
          amount: Decimal128.fromString('1.25'),
          at: new Date(7),
        });
      await writer.close();
      await first.stop();
      expect((await readdir(join(dir, 'data'))).filter((f) => f.includes('.tmp-'))).toEqual([]);

      const second = await startMongoEngine({ snapshotPath });
      const reader = new MongoClient(`${second.uri}keep`);
      try {
        const coll = reader.db().collection('accounts');
        const doc = await coll.findOne({ _id: id });
        expect(doc?.email).toBe('a@x.io');
        expect(String(doc?.amount)).toBe('1.25');
        expect(doc?.at).toEqual(new Date(7));
        expect((await coll.indexes()).map((i) => i.name)).toEqual(['_id_', 'email_1']);
        await expect(coll.insertOne({ email: 'a@x.io' })).rejects.toMatchObject({ code: 11000 });
      } finally {
        await reader.close();
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('warns loudly at start that it is not MongoDB', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString());
        callback();
      },
    });
    const engine = await startMongoEngine({ logger: pino({ level: 'warn' }, sink) });
    await engine.stop();
    const warnings = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(/NOT MONGODB.*Never use it in production/);
  });

  it('closes client connections on stop', async () => {
    const engine = await startMongoEngine();
    const client = new MongoClient(engine.uri, { serverSelectionTimeoutMS: 200 });
    await client.db('admin').command({ ping: 1 });
    await engine.stop();
    await expect(client.db('admin').command({ ping: 1 })).rejects.toThrow();
    await client.close();
  });
});
