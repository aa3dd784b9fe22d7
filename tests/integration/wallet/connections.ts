/**
 * Extra mongoose connections to the test database: each stands for another
 * process running the same core code against the same data.
 */
import { afterAll } from '@jest/globals';
import mongoose, { type Connection } from 'mongoose';
import type { TestDatabase } from '../../support/database.js';

export function useExtraConnections(database: TestDatabase): {
  open(count: number): Promise<Connection[]>;
} {
  const opened: Connection[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((connection) => connection.close()));
  });
  return {
    async open(count) {
      const connections = await Promise.all(
        Array.from({ length: count }, () =>
          mongoose
            .createConnection(database.uri, {
              dbName: database.dbName,
              serverSelectionTimeoutMS: 5_000,
              autoIndex: false,
              autoCreate: false,
            })
            .asPromise(),
        ),
      );
      opened.push(...connections);
      return connections;
    },
  };
}

/** Picks the i-th of several connections round-robin. */
export function pick<T>(items: readonly T[], i: number): T {
  const item = items[i % items.length];
  if (item === undefined) throw new Error('pick: no items');
  return item;
}
