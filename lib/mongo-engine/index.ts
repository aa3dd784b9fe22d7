import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Document } from 'bson';
import type { Logger } from 'pino';
import { runCommand } from './commands.js';
import type { EngineContext } from './context.js';
import { CursorStore } from './cursors.js';
import { encodeSnapshot, loadSnapshot, writeSnapshot } from './snapshot.js';
import { Catalog } from './storage.js';
import {
  FrameReader,
  FramingError,
  MessageError,
  OP_REPLY,
  encodeMsgReply,
  encodeOpReply,
  parseMessage,
} from './wire.js';

/*
 * An in-process MongoDB wire-protocol server for tests and demos: the real `mongodb`
 * driver and mongoose connect to it over TCP. Flow per connection: bytes -> frames
 * (wire.ts) -> one command, run synchronously to completion (commands.ts) -> reply.
 * Because nothing awaits inside a command, each command is atomic across connections.
 */

export interface MongoEngineOptions {
  /** Interface to listen on. Default '127.0.0.1'. */
  host?: string;
  /** TCP port. Default 0: any free port (read it back from `port` / `uri`). */
  port?: number;
  /**
   * When set: loaded at start if the file exists, written on stop and every
   * `snapshotIntervalMs` when data changed (temp file + rename).
   */
  snapshotPath?: string;
  /** Milliseconds between snapshot writes. Default 5000. */
  snapshotIntervalMs?: number;
  /** Milliseconds between TTL index sweeps. Default 1000 (mongod sweeps every 60 s). */
  ttlSweepIntervalMs?: number;
  /** pino logger; when absent the engine logs nothing. */
  logger?: Logger;
}

export interface MongoEngine {
  /** `mongodb://127.0.0.1:<port>/`, usable as is or with `directConnection=true`. */
  readonly uri: string;
  readonly port: number;
  /** Closes the listener and every client socket, then writes the snapshot. */
  stop(): Promise<void>;
}

/** Commands after which the snapshot is out of date. */
const WRITE_COMMANDS = new Set([
  'insert',
  'update',
  'delete',
  'findAndModify',
  'findandmodify',
  'create',
  'drop',
  'dropDatabase',
  'createIndexes',
  'dropIndexes',
  'deleteIndexes',
]);

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

export async function startMongoEngine(options: MongoEngineOptions = {}): Promise<MongoEngine> {
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger;
  const snapshotPath = options.snapshotPath;
  const catalog =
    (snapshotPath !== undefined ? await loadSnapshot(snapshotPath) : undefined) ?? new Catalog();
  const cursors = new CursorStore();
  const sockets = new Set<Socket>();
  const startedAtMs = Date.now();
  let nextConnectionId = 1;
  let generation = 0;
  let savedGeneration = 0;

  const execute = (ctx: EngineContext, db: string, body: Document): Document => {
    const name = Object.keys(body)[0] ?? '';
    if (WRITE_COMMANDS.has(name)) generation += 1;
    try {
      return runCommand(ctx, db, body);
    } catch (error) {
      logger?.error(
        { err: error, command: name, connId: ctx.connectionId },
        'mongo-engine command crashed',
      );
      return {
        ok: 0,
        code: 1,
        codeName: 'InternalError',
        errmsg: `internal error in the in-process engine running '${name}': ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  };

  /** Encodes a reply; a reply that cannot be encoded becomes an error reply. */
  const encode = (opCode: number, responseTo: number, reply: Document): Buffer => {
    const encoder = opCode === OP_REPLY ? encodeOpReply : encodeMsgReply;
    try {
      return encoder(responseTo, reply);
    } catch (error) {
      return encoder(responseTo, {
        ok: 0,
        code: 10334,
        codeName: 'BSONObjectTooLarge',
        errmsg: `reply could not be encoded: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  };

  const handleFrame = (socket: Socket, ctx: EngineContext, frame: Buffer): void => {
    let request;
    try {
      request = parseMessage(frame);
    } catch (error) {
      if (!(error instanceof MessageError)) throw error;
      logger?.warn(
        { connId: ctx.connectionId, reason: error.message },
        'mongo-engine malformed message',
      );
      socket.write(
        encode(error.replyOpCode, error.requestId, {
          ok: 0,
          code: 22,
          codeName: 'InvalidBSON',
          errmsg: error.message,
        }),
      );
      return;
    }
    if (request.kind === 'query') {
      // Legacy OP_QUERY is only the handshake: `admin.$cmd` with `{ isMaster: 1 }`,
      // possibly wrapped as `{ $query: {...}, $readPreference }`.
      const suffix = '.$cmd';
      const wrapped: unknown = request.query.$query;
      const body =
        typeof wrapped === 'object' && wrapped !== null ? (wrapped as Document) : request.query;
      const reply = request.collection.endsWith(suffix)
        ? execute(ctx, request.collection.slice(0, -suffix.length), body)
        : {
            ok: 0,
            code: 352,
            codeName: 'UnsupportedOpQueryCommand',
            errmsg: 'OP_QUERY is only supported for commands on <db>.$cmd',
          };
      socket.write(encode(OP_REPLY, request.requestId, reply));
      return;
    }
    const db: unknown = request.body.$db;
    const reply =
      typeof db === 'string'
        ? execute(ctx, db, request.body)
        : {
            ok: 0,
            code: 40571,
            codeName: 'Location40571',
            errmsg: 'OP_MSG requests require a $db argument',
          };
    if (!request.moreToCome) socket.write(encode(2013, request.requestId, reply));
  };

  const onConnection = (socket: Socket): void => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const ctx: EngineContext = {
      catalog,
      cursors,
      connectionId: nextConnectionId,
      startedAtMs,
      openConnections: () => sockets.size,
    };
    nextConnectionId += 1;
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let frame = reader.next(); frame !== undefined; frame = reader.next()) {
          handleFrame(socket, ctx, frame);
        }
      } catch (error) {
        // Framing is lost (or something unexpected broke): only this connection closes.
        const reason = error instanceof Error ? error.message : String(error);
        if (error instanceof FramingError) {
          logger?.warn(
            { connId: ctx.connectionId, reason },
            'mongo-engine closing connection: bad framing',
          );
        } else {
          logger?.error({ err: error, connId: ctx.connectionId }, 'mongo-engine connection failed');
        }
        socket.destroy();
      }
    });
    socket.on('error', (error) => {
      logger?.debug(
        { connId: ctx.connectionId, reason: error.message },
        'mongo-engine socket error',
      );
    });
    socket.on('close', () => {
      sockets.delete(socket);
    });
  };

  const server = createServer(onConnection);
  const port = await listen(server, options.port ?? 0, host);
  const uri = `mongodb://${host}:${port}/`;

  logger?.warn(
    { uri, storage: snapshotPath ?? 'memory only' },
    'IN-PROCESS TEST/DEMO DATABASE ENGINE, NOT MONGODB: data lives in this process memory' +
      (snapshotPath !== undefined
        ? ` and the snapshot file ${snapshotPath}`
        : ' and is lost on exit') +
      '; no transactions, no replication, no durability guarantees. Never use it in production.',
  );

  const ttlTimer = setInterval(() => {
    const now = Date.now();
    if (catalog.sweepExpired(now) > 0) generation += 1;
    cursors.reapIdle(now);
  }, options.ttlSweepIntervalMs ?? 1000);
  ttlTimer.unref();

  let snapshotChain: Promise<void> = Promise.resolve();
  const saveSnapshot = (): Promise<void> => {
    if (snapshotPath === undefined || generation === savedGeneration) return snapshotChain;
    const target = generation;
    const bytes = encodeSnapshot(catalog);
    snapshotChain = snapshotChain
      .then(() => writeSnapshot(snapshotPath, bytes))
      .then(() => {
        savedGeneration = Math.max(savedGeneration, target);
      })
      .catch((error: unknown) => {
        logger?.error({ err: error, snapshotPath }, 'mongo-engine snapshot write failed');
      });
    return snapshotChain;
  };
  const snapshotTimer =
    snapshotPath !== undefined
      ? setInterval(() => void saveSnapshot(), options.snapshotIntervalMs ?? 5000)
      : undefined;
  snapshotTimer?.unref();

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      clearInterval(ttlTimer);
      if (snapshotTimer !== undefined) clearInterval(snapshotTimer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      cursors.clear();
      await saveSnapshot();
    })();
    return stopped;
  };

  return { uri, port, stop };
}
