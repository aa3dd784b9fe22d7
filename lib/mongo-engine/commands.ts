import type { Document } from 'bson';
import { aggregateCommands } from './aggregate.js';
import { catalogCommands } from './catalog-commands.js';
import { checkOptions } from './context.js';
import type { CommandHandler, EngineContext } from './context.js';
import { crudCommands } from './crud.js';
import { CommandError } from './errors.js';
import { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE_BYTES, MAX_WRITE_BATCH_SIZE } from './wire.js';

/*
 * Command dispatch: the first field of the body names the command. Unknown commands
 * answer CommandNotFound (59) exactly like mongod; unknown options are refused by each
 * handler's allow-list (see `checkOptions`).
 */

/** MongoDB 7.0. The driver (7.8) accepts wire versions 9..29. */
export const MAX_WIRE_VERSION = 21;
export const SERVER_VERSION = '7.0.0';
/**
 * Advertised so the driver attaches `lsid` to commands (accepted and ignored) and
 * `client.startSession()` works as on a real standalone mongod; transactions are still
 * refused below, as a standalone mongod refuses them.
 */
export const LOGICAL_SESSION_TIMEOUT_MINUTES = 30;

/**
 * `hello` never validates its options: it is the handshake, and a driver adds fields
 * (client metadata, compression, saslSupportedMechs, ...) over time.
 * https://github.com/mongodb/specifications/blob/master/source/mongodb-handshake/handshake.md
 */
function hello(legacy: boolean): CommandHandler {
  return (ctx, _db, cmd) => {
    if (cmd.loadBalanced === true) {
      throw new CommandError('BadValue', 'The server is not configured for load balancing');
    }
    const reply: Document = legacy ? { ismaster: true } : { isWritablePrimary: true };
    if (cmd.helloOk === true) reply.helloOk = true;
    return {
      ...reply,
      maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
      maxMessageSizeBytes: MAX_MESSAGE_SIZE_BYTES,
      maxWriteBatchSize: MAX_WRITE_BATCH_SIZE,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: LOGICAL_SESSION_TIMEOUT_MINUTES,
      connectionId: ctx.connectionId,
      minWireVersion: 0,
      maxWireVersion: MAX_WIRE_VERSION,
      readOnly: false,
      ok: 1,
    };
  };
}

const buildInfo: CommandHandler = (_ctx, _db, cmd) => {
  checkOptions(cmd, []);
  return {
    version: SERVER_VERSION,
    gitVersion: 'atlantic-in-process-test-engine',
    versionArray: [7, 0, 0, 0],
    bits: 64,
    debug: false,
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    storageEngines: ['in-process-memory'],
    javascriptEngine: 'none',
    modules: [],
    ok: 1,
  };
};

const ok: CommandHandler = (_ctx, _db, cmd) => {
  checkOptions(cmd, []);
  return { ok: 1 };
};

/** `endSessions` carries the session ids as its value: nothing to check, nothing kept. */
const endSessions: CommandHandler = () => ({ ok: 1 });

const PARAMETERS: Document = {
  featureCompatibilityVersion: { version: '7.0' },
  cursorTimeoutMillis: 600000,
  internalQueryMaxBlockingSortMemoryUsageBytes: 100 * 1024 * 1024,
};

const getParameter: CommandHandler = (_ctx, _db, cmd) => {
  const all = cmd.getParameter === '*';
  const reply: Document = {};
  for (const key of Object.keys(cmd)) {
    if (key === 'getParameter' || key.startsWith('$') || key === 'lsid' || key === 'comment')
      continue;
    if (!(key in PARAMETERS))
      throw new CommandError('InvalidOptions', `no option found to get: ${key}`);
    const value: unknown = PARAMETERS[key];
    reply[key] = value;
  }
  return all ? { ...PARAMETERS, ok: 1 } : { ...reply, ok: 1 };
};

const getCmdLineOpts: CommandHandler = (_ctx, _db, cmd) => {
  checkOptions(cmd, []);
  return { argv: ['atlantic-in-process-test-engine'], parsed: {}, ok: 1 };
};

const connectionStatus: CommandHandler = (_ctx, _db, cmd) => {
  checkOptions(cmd, ['showPrivileges']);
  return { authInfo: { authenticatedUsers: [], authenticatedUserRoles: [] }, ok: 1 };
};

const serverStatus: CommandHandler = (ctx) => {
  const uptimeMillis = Date.now() - ctx.startedAtMs;
  return {
    host: 'atlantic-in-process-test-engine',
    version: SERVER_VERSION,
    process: 'mongod',
    pid: process.pid,
    uptime: Math.floor(uptimeMillis / 1000),
    uptimeMillis,
    localTime: new Date(),
    connections: { current: ctx.openConnections(), available: 1000 },
    metrics: {
      cursor: { open: { total: ctx.cursors.size } },
      queryExecutor: { scanned: 0, scannedObjects: ctx.catalog.stats.scannedObjects },
    },
    ok: 1,
  };
};

/**
 * A standalone mongod answers every transaction request with this error; the engine
 * mirrors it so code that needs transactions fails here as it would there.
 */
const refuseTransaction: CommandHandler = () => {
  throw transactionsRefused();
};

function transactionsRefused(): CommandError {
  return new CommandError(
    'IllegalOperation',
    'Transaction numbers are only allowed on a replica set member or mongos (the in-process test engine has no transactions)',
  );
}

const handlers: Record<string, CommandHandler> = {
  hello: hello(false),
  isMaster: hello(true),
  ismaster: hello(true),
  buildInfo,
  buildinfo: buildInfo,
  ping: ok,
  endSessions,
  getParameter,
  getCmdLineOpts,
  connectionStatus,
  serverStatus,
  commitTransaction: refuseTransaction,
  abortTransaction: refuseTransaction,
  ...crudCommands,
  ...aggregateCommands,
  ...catalogCommands,
};

/** Runs one command and always returns a reply document (`ok: 0` on failure). */
export function runCommand(ctx: EngineContext, db: string, body: Document): Document {
  const [name] = Object.keys(body);
  try {
    if (name === undefined) throw new CommandError('FailedToParse', 'Empty command object');
    const handler = Object.prototype.hasOwnProperty.call(handlers, name)
      ? handlers[name]
      : undefined;
    if (handler === undefined)
      throw new CommandError('CommandNotFound', `no such command: '${name}'`);
    if ('txnNumber' in body || 'startTransaction' in body || 'autocommit' in body)
      throw transactionsRefused();
    return handler(ctx, db, body);
  } catch (error) {
    if (error instanceof CommandError) return error.toReply();
    throw error;
  }
}
