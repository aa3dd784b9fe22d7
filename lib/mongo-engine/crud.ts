import { Long, ObjectId } from 'bson';
import type { Document } from 'bson';
import {
  checkFields,
  checkOptions,
  collectionName,
  optionalBool,
  optionalDocument,
  optionalInt,
  refuseCollation,
  toCursorId,
} from './context.js';
import type { CommandHandler, EngineContext } from './context.js';
import { CommandError, badValue } from './errors.js';
import { compileFilter, parseSort, projectDocuments, sortDocuments } from './query.js';
import type { SortSpec } from './query.js';
import type { Collection } from './storage.js';
import { applyUpdate, buildUpsert, classifyUpdate } from './update.js';
import { compareValues, isPlainObject, keyOf, valuesAtPath } from './values.js';

/*
 * The CRUD commands. Each handler runs synchronously from parsing to reply, so one
 * command is atomic with respect to every other connection: that is what makes
 * `{ balance: { $gte: x } }` + `$inc` races and `findAndModify` job locking correct.
 * https://www.mongodb.com/docs/manual/reference/command/nav-crud/
 */

interface MatchOptions {
  sort?: SortSpec;
  natural?: 1 | -1;
  skip?: number;
  limit?: number;
  variables?: Document;
}

/** Matching documents in `$natural` order (or sorted), after skip and limit. */
export function matchDocuments(
  coll: Collection | undefined,
  filter: Document | undefined,
  options: MatchOptions = {},
): Document[] {
  if (coll === undefined) return [];
  const predicate = compileFilter(filter, options.variables);
  const skip = Math.max(0, options.skip ?? 0);
  const limit = options.limit !== undefined && options.limit > 0 ? options.limit : Infinity;
  const sorted = options.sort !== undefined && options.sort.length > 0;
  let source = coll.candidates(filter);
  if (options.natural === -1) source = [...source].reverse();
  const matched: Document[] = [];
  const wanted = sorted ? Infinity : skip + limit;
  for (const doc of source) {
    coll.stats.scannedObjects += 1;
    if (!predicate(doc)) continue;
    matched.push(doc);
    if (matched.length >= wanted) break;
  }
  const ordered = sorted ? sortDocuments(matched, options.sort ?? []) : matched;
  if (skip === 0 && limit === Infinity) return ordered;
  return ordered.slice(skip, limit === Infinity ? undefined : skip + limit);
}

/** A hint must name an existing index (or `$natural`), as MongoDB checks. */
function checkHint(coll: Collection | undefined, hint: unknown): 1 | -1 | undefined {
  if (hint === undefined || hint === null) return undefined;
  if (isPlainObject(hint) && '$natural' in hint) return Number(hint.$natural) === -1 ? -1 : 1;
  if (coll === undefined) return undefined;
  if (typeof hint === 'string') {
    if (coll.hasIndexNamed(hint)) return undefined;
  } else if (isPlainObject(hint)) {
    if (coll.indexSpecs().some((spec) => keyOf(spec.key) === keyOf(hint))) return undefined;
  }
  throw badValue('hint provided does not correspond to an existing index');
}

function batchSizeOf(doc: Document | undefined): number | undefined {
  if (doc === undefined) return undefined;
  const size = optionalInt(doc, 'batchSize');
  if (size !== undefined && size < 0)
    throw badValue(`BSON field 'batchSize' value must be >= 0, actual value '${size}'`);
  return size;
}

const find: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, [
    'filter',
    'sort',
    'projection',
    'skip',
    'limit',
    'batchSize',
    'singleBatch',
    'hint',
    'let',
    'collation',
    // Harmless on one node: there are no shards to be partial about, no disk to spill to,
    // and idle cursors are only reaped after 10 minutes anyway.
    'allowPartialResults',
    'allowDiskUse',
    'noCursorTimeout',
  ]);
  refuseCollation(cmd);
  const name = collectionName(cmd, 'find');
  const coll = ctx.catalog.collection(db, name, false);
  const filter = optionalDocument(cmd, 'filter');
  const { keys, natural } = parseSort(cmd.sort);
  const hinted = checkHint(coll, cmd.hint);
  let limit = optionalInt(cmd, 'limit');
  let singleBatch = optionalBool(cmd, 'singleBatch') ?? false;
  if (limit !== undefined && limit < 0) {
    limit = -limit;
    singleBatch = true;
  }
  const docs = matchDocuments(coll, filter, {
    sort: keys,
    natural: natural ?? hinted,
    skip: optionalInt(cmd, 'skip'),
    limit,
    variables: optionalDocument(cmd, 'let'),
  });
  const projected = projectDocuments(docs, cmd.projection, filter);
  return {
    ...ctx.cursors.open(`${db}.${name}`, projected, {
      batchSize: batchSizeOf(cmd),
      singleBatch,
      noTimeout: optionalBool(cmd, 'noCursorTimeout') ?? false,
    }),
  };
};

const getMore: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['collection', 'batchSize', 'term', 'lastKnownCommittedOpTime']);
  const coll: unknown = cmd.collection;
  if (typeof coll !== 'string')
    throw badValue(`BSON field 'getMore.collection' is missing but a required field`);
  return { ...ctx.cursors.getMore(toCursorId(cmd.getMore), `${db}.${coll}`, batchSizeOf(cmd)) };
};

const killCursors: CommandHandler = (ctx, _db, cmd) => {
  checkOptions(cmd, ['cursors']);
  collectionName(cmd, 'killCursors');
  if (!Array.isArray(cmd.cursors))
    throw badValue(`BSON field 'killCursors.cursors' is missing but a required field`);
  const { killed, notFound } = ctx.cursors.kill(cmd.cursors.map(toCursorId));
  return {
    cursorsKilled: killed.map((id) => Long.fromBigInt(id)),
    cursorsNotFound: notFound.map((id) => Long.fromBigInt(id)),
    cursorsAlive: [],
    cursorsUnknown: [],
    ok: 1,
  };
};

/** Runs a batch of write statements with MongoDB's ordered/unordered error rules. */
function runBatch(
  statements: unknown,
  field: string,
  ordered: boolean,
  run: (statement: Document, index: number) => void,
): Document[] {
  if (!Array.isArray(statements))
    throw badValue(`BSON field '${field}' is missing but a required field`);
  const writeErrors: Document[] = [];
  for (let i = 0; i < statements.length; i += 1) {
    const statement: unknown = statements[i];
    try {
      if (!isPlainObject(statement)) throw badValue(`${field}[${i}] must be a document`);
      run(statement, i);
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      writeErrors.push(error.toWriteError(i));
      if (ordered) break;
    }
  }
  return writeErrors;
}

function writeReply(reply: Document, writeErrors: Document[]): Document {
  return writeErrors.length > 0 ? { ...reply, writeErrors, ok: 1 } : { ...reply, ok: 1 };
}

/** MongoDB stores `_id` first and generates an ObjectId when the client did not. */
function withIdFirst(doc: Document): Document {
  if (Object.keys(doc)[0] === '_id') return doc;
  const { _id: id, ...rest } = doc;
  const finalId: unknown = id === undefined ? new ObjectId() : id;
  return { _id: finalId, ...rest };
}

const insert: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['documents', 'ordered', 'bypassDocumentValidation']);
  const name = collectionName(cmd, 'insert');
  const coll = ctx.catalog.collection(db, name, true);
  let n = 0;
  const writeErrors = runBatch(
    cmd.documents,
    'insert.documents',
    optionalBool(cmd, 'ordered') ?? true,
    (doc) => {
      // The document was just deserialised from this request: storage can own it as is.
      coll?.insert(withIdFirst(doc));
      n += 1;
    },
  );
  return writeReply({ n }, writeErrors);
};

const UPDATE_STATEMENT_FIELDS = [
  'q',
  'u',
  'upsert',
  'multi',
  'arrayFilters',
  'hint',
  'collation',
  'sort',
  'c',
];

const update: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['updates', 'ordered', 'bypassDocumentValidation', 'let']);
  const name = collectionName(cmd, 'update');
  const variables = optionalDocument(cmd, 'let');
  let n = 0;
  let nModified = 0;
  const upserted: Document[] = [];
  const writeErrors = runBatch(
    cmd.updates,
    'update.updates',
    optionalBool(cmd, 'ordered') ?? true,
    (statement, index) => {
      checkFields('update.updates', statement, UPDATE_STATEMENT_FIELDS);
      if (statement.c !== undefined)
        throw badValue(
          "update statement field 'c' (constants for pipeline updates) is not supported by the in-process test engine",
        );
      refuseCollation(statement);
      const filter = optionalDocument(statement, 'q') ?? {};
      const u = statement.u as unknown;
      const kind = classifyUpdate(u);
      const change = u as Document;
      const multi = optionalBool(statement, 'multi') ?? false;
      if (multi && kind === 'replacement') {
        throw new CommandError(
          'FailedToParse',
          'multi update is not supported for replacement-style update',
        );
      }
      const arrayFilters = Array.isArray(statement.arrayFilters)
        ? (statement.arrayFilters as Document[])
        : undefined;
      const upsert = optionalBool(statement, 'upsert') ?? false;
      const coll = ctx.catalog.collection(db, name, upsert);
      const { keys } = parseSort(statement.sort);
      checkHint(coll, statement.hint);
      const matches = matchDocuments(coll, filter, {
        sort: keys,
        limit: multi ? undefined : 1,
        variables,
      });
      for (const original of matches) {
        const { doc, changed } = applyUpdate(original, change, { filter, arrayFilters });
        n += 1;
        if (changed) {
          coll?.replace(original, doc);
          nModified += 1;
        }
      }
      if (matches.length === 0 && upsert && coll !== undefined) {
        const doc = buildUpsert(filter, change, arrayFilters);
        coll.insert(doc);
        n += 1;
        const upsertedId: unknown = doc._id;
        upserted.push({ index, _id: upsertedId });
      }
    },
  );
  const reply: Document = { n, nModified };
  if (upserted.length > 0) reply.upserted = upserted;
  return writeReply(reply, writeErrors);
};

const remove: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['deletes', 'ordered', 'let']);
  const name = collectionName(cmd, 'delete');
  const coll = ctx.catalog.collection(db, name, false);
  const variables = optionalDocument(cmd, 'let');
  let n = 0;
  const writeErrors = runBatch(
    cmd.deletes,
    'delete.deletes',
    optionalBool(cmd, 'ordered') ?? true,
    (statement) => {
      checkFields('delete.deletes', statement, ['q', 'limit', 'hint', 'collation']);
      refuseCollation(statement);
      const limit = optionalInt(statement, 'limit') ?? 0;
      if (limit !== 0 && limit !== 1)
        throw badValue(`The limit field in delete objects must be 0 or 1. Got ${limit}`);
      checkHint(coll, statement.hint);
      const matches = matchDocuments(coll, optionalDocument(statement, 'q') ?? {}, {
        limit: limit === 1 ? 1 : undefined,
        variables,
      });
      for (const doc of matches) coll?.remove(doc);
      n += matches.length;
    },
  );
  return writeReply({ n }, writeErrors);
};

const findAndModify: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, [
    'query',
    'sort',
    'remove',
    'update',
    'new',
    'fields',
    'upsert',
    'bypassDocumentValidation',
    'arrayFilters',
    'hint',
    'let',
    'collation',
  ]);
  refuseCollation(cmd);
  const name = collectionName(cmd, 'findAndModify');
  const filter = optionalDocument(cmd, 'query') ?? {};
  const isRemove = optionalBool(cmd, 'remove') ?? false;
  const returnNew = optionalBool(cmd, 'new') ?? false;
  const upsert = optionalBool(cmd, 'upsert') ?? false;
  const change: unknown = cmd.update;
  if (isRemove && change !== undefined)
    throw new CommandError('FailedToParse', 'Cannot specify both an update and remove=true');
  if (!isRemove && change === undefined)
    throw new CommandError('FailedToParse', 'Either an update or remove=true must be specified');
  if (isRemove && upsert)
    throw new CommandError('FailedToParse', 'Cannot specify both upsert=true and remove=true');
  if (isRemove && returnNew) {
    throw new CommandError(
      'FailedToParse',
      "Cannot specify both new=true and remove=true; 'remove' always returns the deleted document",
    );
  }
  const coll = ctx.catalog.collection(db, name, upsert);
  const { keys } = parseSort(cmd.sort);
  checkHint(coll, cmd.hint);
  const [original] = matchDocuments(coll, filter, {
    sort: keys,
    limit: 1,
    variables: optionalDocument(cmd, 'let'),
  });
  const project = (doc: Document | undefined): Document | null => {
    if (doc === undefined) return null;
    return projectDocuments([doc], cmd.fields)[0] ?? null;
  };
  if (isRemove) {
    if (original !== undefined) coll?.remove(original);
    return {
      lastErrorObject: { n: original === undefined ? 0 : 1 },
      value: project(original),
      ok: 1,
    };
  }
  classifyUpdate(change);
  const updateDoc = change as Document;
  const arrayFilters = Array.isArray(cmd.arrayFilters)
    ? (cmd.arrayFilters as Document[])
    : undefined;
  if (original !== undefined) {
    const { doc, changed } = applyUpdate(original, updateDoc, { filter, arrayFilters });
    if (changed) coll?.replace(original, doc);
    return {
      lastErrorObject: { n: 1, updatedExisting: true },
      value: project(returnNew ? doc : original),
      ok: 1,
    };
  }
  if (upsert && coll !== undefined) {
    const doc = buildUpsert(filter, updateDoc, arrayFilters);
    coll.insert(doc);
    const upsertedId: unknown = doc._id;
    return {
      lastErrorObject: { n: 1, updatedExisting: false, upserted: upsertedId },
      value: returnNew ? project(doc) : null,
      ok: 1,
    };
  }
  return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
};

const count: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['query', 'limit', 'skip', 'hint', 'collation', 'fields']);
  refuseCollation(cmd);
  const coll = ctx.catalog.collection(db, collectionName(cmd, 'count'), false);
  checkHint(coll, cmd.hint);
  const query = optionalDocument(cmd, 'query');
  const skip = optionalInt(cmd, 'skip') ?? 0;
  const limit = Math.abs(optionalInt(cmd, 'limit') ?? 0);
  if (coll !== undefined && (query === undefined || Object.keys(query).length === 0)) {
    const total = Math.max(0, coll.docs.size - skip);
    return { n: limit > 0 ? Math.min(limit, total) : total, ok: 1 };
  }
  return {
    n: matchDocuments(coll, query, { skip, limit: limit > 0 ? limit : undefined }).length,
    ok: 1,
  };
};

const distinct: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['key', 'query', 'collation', 'hint']);
  refuseCollation(cmd);
  const key: unknown = cmd.key;
  if (typeof key !== 'string')
    throw badValue(`BSON field 'distinct.key' is missing but a required field`);
  const coll = ctx.catalog.collection(db, collectionName(cmd, 'distinct'), false);
  checkHint(coll, cmd.hint);
  const seen = new Map<string, unknown>();
  for (const doc of matchDocuments(coll, optionalDocument(cmd, 'query'))) {
    for (const value of valuesAtPath(doc, key)) {
      if (value !== undefined) seen.set(keyOf(value), value);
    }
  }
  return { values: [...seen.values()].sort(compareValues), ok: 1 };
};

export const crudCommands: Record<string, CommandHandler> = {
  find,
  getMore,
  killCursors,
  insert,
  update,
  delete: remove,
  findAndModify,
  findandmodify: findAndModify,
  count,
  distinct,
};

export type { EngineContext };
