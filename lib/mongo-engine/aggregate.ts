import { Aggregator } from 'mingo';
import type { Document } from 'bson';
import {
  checkOptions,
  optionalBool,
  optionalDocument,
  optionalInt,
  refuseCollation,
} from './context.js';
import type { CommandHandler } from './context.js';
import { CommandError, badValue, unsupported } from './errors.js';
import { matchDocuments } from './crud.js';
import { fromMingoError } from './query.js';
import { cloneDocument, isPlainObject } from './values.js';

/*
 * `aggregate` runs on mingo's Aggregator. A leading `$match` is answered by our own
 * matcher first (so an indexed equality does not scan), and only the matched documents
 * are copied before mingo sees them, because several mingo stages write into their
 * input documents ($unwind, $addFields on dotted paths).
 * https://www.mongodb.com/docs/manual/reference/command/aggregate/
 */

/**
 * Stages MongoDB has that this engine refuses: writing stages would bypass indexes and
 * E11000 checks, the others need a replica set, Atlas or server internals.
 */
const REFUSED_STAGES = new Set([
  '$out',
  '$merge',
  '$changeStream',
  '$changeStreamSplitLargeEvent',
  '$currentOp',
  '$collStats',
  '$indexStats',
  '$listSessions',
  '$listLocalSessions',
  '$listSampledQueries',
  '$listSearchIndexes',
  '$planCacheStats',
  '$search',
  '$searchMeta',
  '$vectorSearch',
  '$geoNear',
  '$shardedDataDistribution',
]);

function checkPipeline(pipeline: unknown): Document[] {
  if (!Array.isArray(pipeline))
    throw new CommandError('TypeMismatch', "'pipeline' option must be specified as an array");
  return pipeline.map((stage: unknown) => {
    if (!isPlainObject(stage) || Object.keys(stage).length !== 1) {
      throw new CommandError(
        'Location40415',
        'A pipeline stage specification object must contain exactly one field.',
      );
    }
    const name = Object.keys(stage)[0] ?? '';
    if (REFUSED_STAGES.has(name)) throw unsupported(`aggregation stage '${name}'`);
    return stage;
  });
}

const aggregate: CommandHandler = (ctx, db, cmd) => {
  checkOptions(cmd, [
    'pipeline',
    'cursor',
    'allowDiskUse',
    'bypassDocumentValidation',
    'hint',
    'let',
    'collation',
    'explain',
  ]);
  refuseCollation(cmd);
  if (optionalBool(cmd, 'explain') === true) throw unsupported("aggregate option 'explain'");
  const cursorOptions = optionalDocument(cmd, 'cursor');
  if (cursorOptions === undefined) {
    throw new CommandError(
      'FailedToParse',
      "The 'cursor' option is required, except for aggregate with the explain argument",
    );
  }
  const pipeline = checkPipeline(cmd.pipeline);
  const variables = optionalDocument(cmd, 'let');
  const target: unknown = cmd.aggregate;
  let source: Document[];
  let ns: string;
  if (typeof target === 'string') {
    ns = `${db}.${target}`;
    const coll = ctx.catalog.collection(db, target, false);
    let filter: Document | undefined;
    const first = pipeline[0];
    if (first !== undefined && isPlainObject(first.$match) && !('$expr' in first.$match)) {
      filter = first.$match;
      pipeline.shift();
    }
    source = matchDocuments(coll, filter, { variables }).map(cloneDocument);
  } else if (target === 1) {
    // Database-level aggregate: only stages that make their own documents ($documents).
    ns = `${db}.$cmd.aggregate`;
    source = [];
  } else {
    throw badValue('aggregate field must be a collection name or 1');
  }
  let results: Document[];
  try {
    const aggregator = new Aggregator(pipeline, {
      scriptEnabled: false,
      variables,
      collectionResolver: (name: string) =>
        matchDocuments(ctx.catalog.collection(db, name, false), undefined).map(cloneDocument),
    });
    results = aggregator.run<Document>(source);
  } catch (error) {
    throw fromMingoError(error, 'aggregate');
  }
  const batchSize = optionalInt(cursorOptions, 'batchSize');
  return { ...ctx.cursors.open(ns, results, { batchSize }) };
};

export const aggregateCommands: Record<string, CommandHandler> = { aggregate };
