/**
 * Starts the test database once for the whole run, in the order `npm start`
 * uses (MONGODB_URI, an embedded mongod, the in-process engine), and hands its
 * URI to the test workers. Each test file then works in a database of its own
 * (tests/support/database.ts).
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import pino from 'pino';
import { startDatabaseServer, type DatabaseServer } from '../../lib/database.js';
import { testEnvKeys } from './test-env.js';

declare global {
  var __atlanticTestDatabase: DatabaseServer | undefined;
}

export default async function startTestDatabase(): Promise<void> {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-test-'));
  const server = await startDatabaseServer({
    uri: process.env.MONGODB_URI,
    isProduction: false,
    purpose: 'test',
    dataDir,
    systemBinary: process.env.MONGOMS_SYSTEM_BINARY,
    allowDownload: process.env.MONGOMS_DOWNLOAD !== 'false',
    logger,
  });
  globalThis.__atlanticTestDatabase = server;
  process.env[testEnvKeys.uri] = server.uri;
  process.env[testEnvKeys.engine] = server.engine;
  process.stderr.write(`\ntest database: ${server.engine} (${server.uri})\n`);
}
