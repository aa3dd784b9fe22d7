import { calculateObjectSize } from 'bson';
import type { Document } from 'bson';
import {
  checkOptions,
  isEnvelopeField,
  collectionName,
  optionalBool,
  optionalDocument,
  optionalInt,
} from './context.js';
import type { CommandHandler } from './context.js';
import { CommandError, badValue, unsupported } from './errors.js';
import { compileFilter } from './query.js';
import { normaliseIndexSpec, sameIndexDefinition } from './storage.js';
import type { Collection, IndexSpec } from './storage.js';
import { isPlainObject, keyOf } from './values.js';

/*
 * Catalog commands: collections, databases and indexes.
 * https://www.mongodb.com/docs/manual/reference/command/nav-administration/
 */

function indexDocument(spec: IndexSpec): Document {
  return { ...spec, key: { ...spec.key } };
}

const createIndexes: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['indexes', 'commitQuorum']);
  const name = collectionName(cmd, 'createIndexes');
  if (!Array.isArray(cmd.indexes) || cmd.indexes.length === 0) {
    throw badValue('Must specify at least one index to create');
  }
  const specs = cmd.indexes.map(normaliseIndexSpec);
  const existed = ctx.catalog.collection(db, name, false) !== undefined;
  const coll = ctx.catalog.collection(db, name, true) as Collection;
  const before = coll.indexSpecs();
  const created: string[] = [];
  try {
    for (const spec of specs) {
      if (!needsBuild(coll, spec)) continue;
      try {
        coll.createIndex(spec);
      } catch (error) {
        if (error instanceof CommandError && error.code === 11000) {
          throw new CommandError(
            'DuplicateKey',
            `Index build failed: ${coll.ns} :: caused by :: ${error.message}`,
            error.extra,
          );
        }
        throw error;
      }
      created.push(spec.name);
    }
  } catch (error) {
    // All or nothing, like MongoDB's multi-index build.
    for (const indexName of created) coll.dropIndex(indexName);
    throw error;
  }
  const reply: Document = {
    numIndexesBefore: before.length,
    numIndexesAfter: coll.indexSpecs().length,
    createdCollectionAutomatically: !existed,
    ok: 1,
  };
  if (created.length === 0) reply.note = 'all indexes already exist';
  return reply;
};

/** False when an identical index exists; throws when a conflicting one does. */
function needsBuild(coll: Collection, spec: IndexSpec): boolean {
  for (const existing of coll.indexSpecs()) {
    const sameName = existing.name === spec.name;
    const sameKey = keyOf(existing.key) === keyOf(spec.key);
    if (!sameName && !sameKey) continue;
    if (sameName && sameIndexDefinition(existing, spec)) return false;
    if (sameName) {
      throw new CommandError(
        'IndexKeySpecsConflict',
        `An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: ${JSON.stringify(spec)}, existing index: ${JSON.stringify(existing)}`,
      );
    }
    if (
      sameKey &&
      keyOf(existing.partialFilterExpression) === keyOf(spec.partialFilterExpression)
    ) {
      if (spec.name === '_id_' || existing.name === '_id_') {
        if (spec.unique === true || spec.sparse === true) {
          throw badValue(
            `The field 'unique' or 'sparse' is not valid for an _id index specification`,
          );
        }
        return false;
      }
      throw new CommandError(
        'IndexOptionsConflict',
        sameIndexDefinition(existing, spec)
          ? `Index already exists with a different name: ${existing.name}`
          : `An equivalent index already exists with the same name but different options. Requested index: ${JSON.stringify(spec)}, existing index: ${JSON.stringify(existing)}`,
      );
    }
  }
  return true;
}

const listIndexes: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['cursor', 'includeBuildUUIDs', 'includeIndexBuildInfo']);
  const name = collectionName(cmd, 'listIndexes');
  const coll = ctx.catalog.collection(db, name, false);
  if (coll === undefined)
    throw new CommandError('NamespaceNotFound', `ns does not exist: ${db}.${name}`);
  const batchSize = optionalInt(optionalDocument(cmd, 'cursor') ?? {}, 'batchSize');
  return {
    ...ctx.cursors.open(`${db}.$cmd.listIndexes.${name}`, coll.indexSpecs().map(indexDocument), {
      batchSize,
    }),
  };
};

const dropIndexes: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['index']);
  const name = collectionName(cmd, 'dropIndexes');
  const coll = ctx.catalog.collection(db, name, false);
  if (coll === undefined) throw new CommandError('NamespaceNotFound', `ns not found ${db}.${name}`);
  const nIndexesWas = coll.indexSpecs().length;
  const target: unknown = cmd.index;
  const names: string[] = [];
  if (target === '*') {
    names.push(...coll.indexes.keys());
  } else if (typeof target === 'string') {
    names.push(target);
  } else if (Array.isArray(target)) {
    for (const item of target) if (typeof item === 'string') names.push(item);
  } else if (isPlainObject(target)) {
    const match = coll.indexSpecs().find((spec) => keyOf(spec.key) === keyOf(target));
    if (match === undefined)
      throw new CommandError(
        'IndexNotFound',
        `can't find index with key: ${JSON.stringify(target)}`,
      );
    names.push(match.name);
  } else {
    throw badValue("BSON field 'dropIndexes.index' is missing but a required field");
  }
  for (const indexName of names) {
    if (indexName === '_id_') throw new CommandError('InvalidOptions', 'cannot drop _id index');
    if (!coll.indexes.has(indexName))
      throw new CommandError('IndexNotFound', `index not found with name [${indexName}]`);
  }
  for (const indexName of names) coll.dropIndex(indexName);
  return { nIndexesWas, ok: 1 };
};

const ID_INDEX = { v: 2, key: { _id: 1 }, name: '_id_' };

const listCollections: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['filter', 'nameOnly', 'authorizedCollections', 'cursor']);
  const nameOnly = optionalBool(cmd, 'nameOnly') ?? false;
  const matches = compileFilter(optionalDocument(cmd, 'filter'));
  const entries: Document[] = [];
  const names = [...(ctx.catalog.databases.get(db)?.collections.keys() ?? [])].sort();
  for (const name of names) {
    const entry: Document = nameOnly
      ? { name, type: 'collection' }
      : { name, type: 'collection', options: {}, info: { readOnly: false }, idIndex: ID_INDEX };
    if (matches(entry)) entries.push(entry);
  }
  const batchSize = optionalInt(optionalDocument(cmd, 'cursor') ?? {}, 'batchSize');
  return { ...ctx.cursors.open(`${db}.$cmd.listCollections`, entries, { batchSize }) };
};

function collectionBytes(coll: Collection): number {
  let bytes = 0;
  for (const doc of coll.docs.values()) bytes += calculateObjectSize(doc);
  return bytes;
}

const listDatabases: CommandHandler = (ctx, _db, cmd) => {
  checkOptions(cmd, ['filter', 'nameOnly', 'authorizedDatabases']);
  const nameOnly = optionalBool(cmd, 'nameOnly') ?? false;
  const matches = compileFilter(optionalDocument(cmd, 'filter'));
  const databases: Document[] = [];
  let totalSize = 0;
  for (const db of [...ctx.catalog.databases.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    let sizeOnDisk = 0;
    if (!nameOnly) for (const coll of db.collections.values()) sizeOnDisk += collectionBytes(coll);
    const entry: Document = nameOnly
      ? { name: db.name }
      : { name: db.name, sizeOnDisk, empty: db.collections.size === 0 };
    if (!matches(entry)) continue;
    totalSize += sizeOnDisk;
    databases.push(entry);
  }
  return nameOnly
    ? { databases, ok: 1 }
    : { databases, totalSize, totalSizeMb: Math.round(totalSize / 1048576), ok: 1 };
};

const create: CommandHandler = (ctx, db, cmd) => {
  // Real create options (capped, validator, timeseries, ...) exist but are not built here.
  const option = Object.keys(cmd).find((k) => k !== 'create' && !isEnvelopeField(k));
  if (option !== undefined) throw unsupported(`create option '${option}'`);
  checkOptions(cmd, []);
  const name = collectionName(cmd, 'create');
  if (ctx.catalog.collection(db, name, false) !== undefined) {
    throw new CommandError('NamespaceExists', `Collection ${db}.${name} already exists.`);
  }
  ctx.catalog.collection(db, name, true);
  return { ok: 1 };
};

const drop: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, []);
  const name = collectionName(cmd, 'drop');
  const coll = ctx.catalog.collection(db, name, false);
  const nIndexesWas = coll?.indexSpecs().length ?? 0;
  // Since MongoDB 7.0 dropping a missing collection succeeds.
  ctx.catalog.dropCollection(db, name);
  return { nIndexesWas, ns: `${db}.${name}`, ok: 1 };
};

const dropDatabase: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, []);
  ctx.catalog.databases.delete(db);
  return { dropped: db, ok: 1 };
};

const collStats: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['scale']);
  const name = collectionName(cmd, 'collStats');
  const coll = ctx.catalog.collection(db, name, false);
  if (coll === undefined)
    throw new CommandError('NamespaceNotFound', `Collection [${db}.${name}] not found.`);
  const size = collectionBytes(coll);
  const indexSizes: Document = {};
  for (const spec of coll.indexSpecs()) indexSizes[spec.name] = 0;
  return {
    ns: coll.ns,
    count: coll.docs.size,
    size,
    avgObjSize: coll.docs.size === 0 ? 0 : Math.round(size / coll.docs.size),
    storageSize: size,
    nindexes: coll.indexSpecs().length,
    totalIndexSize: 0,
    indexSizes,
    ok: 1,
  };
};

const dbStats: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, ['scale', 'freeStorage']);
  const database = ctx.catalog.databases.get(db);
  let objects = 0;
  let dataSize = 0;
  let indexes = 0;
  for (const coll of database?.collections.values() ?? []) {
    objects += coll.docs.size;
    dataSize += collectionBytes(coll);
    indexes += coll.indexSpecs().length;
  }
  return {
    db,
    collections: database?.collections.size ?? 0,
    views: 0,
    objects,
    avgObjSize: objects === 0 ? 0 : dataSize / objects,
    dataSize,
    storageSize: dataSize,
    indexes,
    indexSize: 0,
    totalSize: dataSize,
    ok: 1,
  };
};

export const catalogCommands: Record<string, CommandHandler> = {
  createIndexes,
  listIndexes,
  dropIndexes,
  deleteIndexes: dropIndexes,
  listCollections,
  listDatabases,
  create,
  drop,
  dropDatabase,
  collStats,
  dbStats,
};
