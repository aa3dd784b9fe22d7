/**
 * The database order of `npm start` and `npm test`: MONGODB_URI, then an
 * embedded mongod, then the in-process engine — each step that cannot work
 * here gives up fast instead of hanging.
 */
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { DatabaseConfigError, startDatabaseServer } from '../../lib/database.js';
import { createLogger } from '../../lib/logger.js';
import { testDatabaseUri } from '../support/database.js';

const logger = createLogger({ level: 'silent' });
const tempDir = () => mkdtemp(path.join(os.tmpdir(), 'atlantic-db-'));

/** A local port with nothing listening: connecting to it is refused at once. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return address.port;
}

async function ping(uri: string): Promise<number> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2_000 });
  try {
    const reply = await client.db('admin').command({ ping: 1 });
    return reply.ok as number;
  } finally {
    await client.close();
  }
}

describe('database discovery', () => {
  it('uses MONGODB_URI as given and starts nothing', async () => {
    const uri = testDatabaseUri();
    const server = await startDatabaseServer({
      uri,
      isProduction: true,
      purpose: 'start',
      dataDir: await tempDir(),
      allowDownload: true,
      logger,
    });
    expect(server.engine).toBe('external');
    expect(server.uri).toBe(uri);
    await server.stop();
    expect(await ping(uri)).toBe(1);
  });

  it('refuses the embedded engines in production and says how to fix it', async () => {
    const refusal = await startDatabaseServer({
      isProduction: true,
      purpose: 'start',
      dataDir: await tempDir(),
      allowDownload: true,
      logger,
    }).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(DatabaseConfigError);
    expect((refusal as Error).message).toMatch(/needs MONGODB_URI/);
  });

  it('falls through to the in-process engine when no mongod can be had or downloaded', async () => {
    const server = await startDatabaseServer({
      isProduction: false,
      purpose: 'test',
      dataDir: await tempDir(),
      allowDownload: true,
      downloadMirror: `http://127.0.0.1:${await closedPort()}`,
      logger,
    });
    try {
      expect(server.engine).toBe('in-process');
      expect(await ping(server.uri)).toBe(1);
    } finally {
      await server.stop();
    }
  });

  it('falls back, with a warning, when MONGOMS_SYSTEM_BINARY is not a working mongod', async () => {
    const lines: string[] = [];
    const warnLogger = createLogger({
      level: 'warn',
      destination: { write: (line: string) => void lines.push(line) },
    });
    const server = await startDatabaseServer({
      isProduction: false,
      purpose: 'test',
      dataDir: await tempDir(),
      systemBinary: '/nonexistent/mongod',
      allowDownload: false,
      logger: warnLogger,
    });
    try {
      expect(server.engine).toBe('in-process');
      expect(lines.join('\n')).toMatch(/database.mongodb_memory_server_failed/);
    } finally {
      await server.stop();
    }
  });
});
