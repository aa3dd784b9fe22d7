/**
 * A fresh database per test file on the run's shared test server. Call
 * `useTestDatabase()` at the top of a file: it connects mongoose before the
 * tests, builds every registered model's indexes, and drops the database after.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from '@jest/globals';
import mongoose from 'mongoose';
import { MongoClient, type Db } from 'mongodb';
import { testEnvKeys } from './test-env.js';

export interface TestDatabase {
  /** Server URI without a database name. */
  readonly uri: string;
  readonly dbName: string;
  /** Which engine serves this run: external, mongodb-memory-server or in-process. */
  readonly engine: string;
  /** The mongoose connection's native Db. */
  readonly db: Db;
  /** A second, independent driver client on the same database (another "process"). */
  newClient(): Promise<MongoClient>;
}

export function testDatabaseUri(): string {
  const uri = process.env[testEnvKeys.uri];
  if (!uri) throw new Error('The test database is not running: run the suite with `npm test`.');
  return uri;
}

export function useTestDatabase(): TestDatabase {
  const uri = testDatabaseUri();
  const dbName = `t_${randomBytes(6).toString('hex')}`;
  const clients: MongoClient[] = [];

  beforeAll(async () => {
    await mongoose.connect(uri, { dbName, serverSelectionTimeoutMS: 5_000 });
    await Promise.all(Object.values(mongoose.models).map((model) => model.init()));
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await mongoose.connection.dropDatabase();
    await mongoose.disconnect();
  });

  return {
    uri,
    dbName,
    engine: process.env[testEnvKeys.engine] ?? 'unknown',
    get db(): Db {
      const db = mongoose.connection.db;
      if (!db) throw new Error('useTestDatabase: not connected yet (use it inside tests/hooks).');
      return db;
    },
    async newClient() {
      const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5_000 });
      await client.connect();
      clients.push(client);
      return client;
    },
  };
}
