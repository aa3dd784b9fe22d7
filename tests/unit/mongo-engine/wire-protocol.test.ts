import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient, MongoServerError } from 'mongodb';
import { startMongoEngine } from '../../../lib/mongo-engine/index.js';
import type { MongoEngine } from '../../../lib/mongo-engine/index.js';
import { RawClient, opMsg, opQuery, rawFrame } from './raw-client.js';

let engine: MongoEngine;
let client: MongoClient;

beforeAll(async () => {
  engine = await startMongoEngine();
  client = new MongoClient(`${engine.uri}wire`);
  await client.connect();
});

afterAll(async () => {
  await client.close();
  await engine.stop();
});

async function pingOnFreshConnection(): Promise<unknown> {
  const raw = await RawClient.open(engine.port);
  raw.send(opMsg({ ping: 1, $db: 'admin' }, { requestId: 99 }));
  const reply = await raw.reply();
  raw.close();
  return reply?.doc;
}

describe('mongo-engine wire protocol', () => {
  it('answers the legacy OP_QUERY handshake with a writable-primary hello', async () => {
    const raw = await RawClient.open(engine.port);
    raw.send(
      opQuery('admin.$cmd', { isMaster: 1, helloOk: true, client: { driver: { name: 'raw' } } }, 7),
    );
    const reply = await raw.reply();
    raw.close();
    expect(reply?.opCode).toBe(1);
    expect(reply?.responseTo).toBe(7);
    expect(reply?.doc).toMatchObject({
      ok: 1,
      ismaster: true,
      helloOk: true,
      minWireVersion: 0,
      maxWireVersion: 21,
      maxBsonObjectSize: 16777216,
      maxMessageSizeBytes: 48000000,
      maxWriteBatchSize: 100000,
      logicalSessionTimeoutMinutes: 30,
    });
    expect(reply?.doc.localTime).toBeInstanceOf(Date);
    expect(typeof reply?.doc.connectionId).toBe('number');
  });

  it('lets the real driver connect, ping and read server info', async () => {
    const admin = client.db('admin');
    await expect(admin.command({ ping: 1 })).resolves.toEqual({ ok: 1 });
    const info = await admin.command({ buildInfo: 1 });
    expect(info.version).toBe('7.0.0');
    const hello = await admin.command({ hello: 1 });
    expect(hello.isWritablePrimary).toBe(true);
  });

  it('accepts kind-1 document sequences and a checksum flag', async () => {
    const raw = await RawClient.open(engine.port);
    raw.send(
      opMsg(
        { insert: 'seq', $db: 'wire', ordered: true },
        {
          sequences: [['documents', [{ _id: 1 }, { _id: 2 }, { _id: 3 }]]],
          checksum: true,
          requestId: 5,
        },
      ),
    );
    const reply = await raw.reply();
    raw.close();
    expect(reply?.responseTo).toBe(5);
    expect(reply?.doc).toEqual({ n: 3, ok: 1 });
    expect(await client.db('wire').collection('seq').countDocuments()).toBe(3);
  });

  it('sends no reply for moreToCome (unacknowledged) writes but applies them', async () => {
    const raw = await RawClient.open(engine.port);
    raw.send(opMsg({ insert: 'fire', $db: 'wire', documents: [{ _id: 'x' }] }, { flags: 2 }));
    raw.send(opMsg({ ping: 1, $db: 'admin' }, { requestId: 2 }));
    const reply = await raw.reply();
    raw.close();
    expect(reply?.responseTo).toBe(2);
    expect(
      await client
        .db('wire')
        .collection('fire')
        .findOne({ _id: 'x' as unknown as never }),
    ).toEqual({ _id: 'x' });
  });

  it('names an unknown command in a CommandNotFound error', async () => {
    const error = await client
      .db('wire')
      .command({ frobnicate: 1 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MongoServerError);
    expect(error).toMatchObject({
      code: 59,
      codeName: 'CommandNotFound',
      message: "no such command: 'frobnicate'",
    });
  });

  it('refuses an unknown command option by name', async () => {
    const error = await client
      .db('wire')
      .command({ find: 'x', filter: {}, bogusOption: 1 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 40415,
      message: "BSON field 'find.bogusOption' is an unknown field.",
    });
  });

  it('refuses transactions the way a standalone mongod does', async () => {
    const raw = await RawClient.open(engine.port);
    raw.send(
      opMsg({
        insert: 't',
        documents: [{}],
        $db: 'wire',
        txnNumber: 1n,
        startTransaction: true,
        autocommit: false,
      }),
    );
    const reply = await raw.reply();
    raw.close();
    expect(reply?.doc).toMatchObject({ ok: 0, code: 20, codeName: 'IllegalOperation' });
    expect(String(reply?.doc.errmsg)).toMatch(/Transaction numbers are only allowed/);
  });

  it('answers truncated BSON with an error and keeps the connection usable', async () => {
    const raw = await RawClient.open(engine.port);
    const payload = Buffer.concat([
      Buffer.alloc(4),
      Buffer.from([0]),
      Buffer.from([0x40, 0, 0, 0, 0x10, 0x61]),
    ]);
    raw.send(rawFrame(2013, payload, 11));
    const bad = await raw.reply();
    expect(bad?.responseTo).toBe(11);
    expect(bad?.doc).toMatchObject({ ok: 0, code: 22 });
    raw.send(opMsg({ ping: 1, $db: 'admin' }, { requestId: 12 }));
    expect((await raw.reply())?.doc).toEqual({ ok: 1 });
    raw.close();
  });

  it('answers an unknown opCode with an error naming it', async () => {
    const raw = await RawClient.open(engine.port);
    raw.send(rawFrame(4242, Buffer.alloc(8), 13));
    const reply = await raw.reply();
    raw.close();
    expect(reply?.doc).toMatchObject({ ok: 0 });
    expect(String(reply?.doc.errmsg)).toContain('4242');
  });

  it('closes only the offending connection when the frame length is impossible', async () => {
    const raw = await RawClient.open(engine.port);
    const garbage = Buffer.alloc(20, 0xff);
    raw.send(garbage);
    await raw.closedByServer();
    expect(await pingOnFreshConnection()).toEqual({ ok: 1 });
    await expect(client.db('admin').command({ ping: 1 })).resolves.toEqual({ ok: 1 });
  });

  it('refuses a message larger than maxMessageSizeBytes', async () => {
    const raw = await RawClient.open(engine.port);
    const head = Buffer.alloc(16);
    head.writeInt32LE(48_000_001, 0);
    head.writeInt32LE(2013, 12);
    raw.send(head);
    await raw.closedByServer();
    expect(await pingOnFreshConnection()).toEqual({ ok: 1 });
  });

  it('survives a client that disconnects in the middle of a frame', async () => {
    const raw = await RawClient.open(engine.port);
    raw.send(opMsg({ ping: 1, $db: 'admin' }).subarray(0, 10));
    raw.close();
    expect(await pingOnFreshConnection()).toEqual({ ok: 1 });
  });

  it('reassembles a frame that arrives one byte at a time', async () => {
    const raw = await RawClient.open(engine.port);
    const frame = opMsg({ ping: 1, $db: 'admin' }, { requestId: 77 });
    for (const byte of frame) raw.send(Buffer.from([byte]));
    const reply = await raw.reply();
    raw.close();
    expect(reply).toMatchObject({ responseTo: 77, doc: { ok: 1 } });
  });
});
