/**
 * Finds Atlantic's database, in the order ARCHITECTURE.md fixes:
 *
 *   1. `MONGODB_URI`, a real MongoDB;
 *   2. an embedded real `mongod` through mongodb-memory-server: a system binary
 *      (`MONGOMS_SYSTEM_BINARY`), one already downloaded, or one it downloads when
 *      the download site answers within a few seconds;
 *   3. the in-process wire-protocol engine (`lib/mongo-engine`), a test and demo
 *      engine that refuses to run in production.
 *
 * Every step that cannot work here fails fast, so a machine without internet
 * reaches step 3 in well under a second instead of hanging on a download.
 */
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import type * as Mms from 'mongodb-memory-server';
import { startMongoEngine } from './mongo-engine/index.js';

export type DatabaseEngine = 'external' | 'mongodb-memory-server' | 'in-process';

export interface DatabaseServerOptions {
  /** A real MongoDB; when set nothing is started. */
  uri?: string | undefined;
  isProduction: boolean;
  /**
   * `start` keeps data under `dataDir` (a mongod dbPath or the engine's snapshot);
   * `test` uses a throwaway store.
   */
  purpose: 'start' | 'test';
  dataDir: string;
  /** Path to a local `mongod` for mongodb-memory-server. */
  systemBinary?: string | undefined;
  /** Let mongodb-memory-server download a `mongod` when its site is reachable. */
  allowDownload: boolean;
  /** How long to wait for the download site before giving up on it. Default 3000. */
  downloadProbeTimeoutMs?: number;
  /** The download site to probe; default mongodb-memory-server's own (MONGOMS_DOWNLOAD_MIRROR or fastdl.mongodb.org). */
  downloadMirror?: string;
  logger: Logger;
}

export interface DatabaseServer {
  /** A URI without a database name; append one or pass `dbName` to the driver. */
  readonly uri: string;
  readonly engine: DatabaseEngine;
  /** Stops what this module started (nothing for an external MongoDB). */
  stop(): Promise<void>;
}

export class DatabaseConfigError extends Error {
  override readonly name = 'DatabaseConfigError';
}

export async function startDatabaseServer(options: DatabaseServerOptions): Promise<DatabaseServer> {
  const { logger } = options;
  if (options.uri) {
    logger.info({ engine: 'external' }, 'database.selected');
    return { uri: options.uri, engine: 'external', stop: async () => {} };
  }
  if (options.isProduction) {
    throw new DatabaseConfigError(
      'NODE_ENV=production needs MONGODB_URI: the embedded engines are for development and tests. ' +
        'Point MONGODB_URI at your MongoDB (docker-compose starts one).',
    );
  }

  const embedded = await tryMongoMemoryServer(options);
  if (embedded) return embedded;

  const engine = await startMongoEngine({
    logger,
    ...(options.purpose === 'start'
      ? { snapshotPath: path.join(options.dataDir, 'mongo-engine.snapshot') }
      : {}),
  });
  logger.info({ engine: 'in-process', uri: engine.uri }, 'database.selected');
  return { uri: engine.uri, engine: 'in-process', stop: () => engine.stop() };
}

async function tryMongoMemoryServer(
  options: DatabaseServerOptions,
): Promise<DatabaseServer | null> {
  const { logger } = options;
  try {
    const mms = await import('mongodb-memory-server');
    const binary = await findMongodBinary(options, mms);
    if (!binary) return null;
    const instance =
      options.purpose === 'start'
        ? { dbPath: path.join(options.dataDir, 'mongod'), storageEngine: 'wiredTiger' as const }
        : {};
    if (instance.dbPath) await mkdir(instance.dbPath, { recursive: true });
    const server = await mms.MongoMemoryServer.create({
      binary: binary.kind === 'download' ? {} : { systemBinary: binary.path },
      instance,
    });
    const uri = server.getUri();
    logger.info({ engine: 'mongodb-memory-server', uri }, 'database.selected');
    return {
      uri,
      engine: 'mongodb-memory-server',
      stop: async () => {
        await server.stop({ doCleanup: options.purpose === 'test' });
      },
    };
  } catch (err) {
    logger.warn({ err }, 'database.mongodb_memory_server_failed');
    return null;
  }
}

/** Where mongodb-memory-server gets its mongod, or null to move on to the next engine. */
type MongodSource = { kind: 'binary'; path: string } | { kind: 'download' };

async function findMongodBinary(
  options: DatabaseServerOptions,
  mms: typeof Mms,
): Promise<MongodSource | null> {
  if (options.systemBinary) return { kind: 'binary', path: options.systemBinary };
  const { resolveConfig, ResolveConfigVariables, DEFAULT_VERSION } =
    await import('mongodb-memory-server-core/lib/util/resolveConfig.js');
  const version = resolveConfig(ResolveConfigVariables.VERSION) ?? DEFAULT_VERSION;
  const cached = await mms.DryMongoBinary.locateBinary({ version });
  if (cached) return { kind: 'binary', path: cached };
  if (!options.allowDownload) {
    options.logger.info('database.mongod_download_disabled');
    return null;
  }
  const mirror =
    options.downloadMirror ??
    resolveConfig(ResolveConfigVariables.DOWNLOAD_MIRROR) ??
    'https://fastdl.mongodb.org';
  const reachable = await isReachable(mirror, options.downloadProbeTimeoutMs ?? 3000);
  if (!reachable) {
    options.logger.info({ mirror }, 'database.mongod_download_unreachable');
    return null;
  }
  return { kind: 'download' };
}

async function isReachable(url: string, timeoutMs: number): Promise<boolean> {
  try {
    await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs) });
    return true;
  } catch {
    return false;
  }
}
