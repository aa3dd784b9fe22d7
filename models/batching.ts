/**
 * Coalesced database calls: same-shaped reads and writes issued in the same
 * turn of the event loop go to the server as ONE command, and every caller
 * gets its own answer back, as if it had sent its own.
 *
 * Why: a burst of webhook events runs the same fulfilment steps side by side;
 * sent one by one, each step costs a command round trip and its encoding on
 * both ends, and that per-command cost, not the work, is what limits
 * throughput. Batched, 50 lookups by key are one `find` with `$in`, 50 inserts
 * one `insert` and 50 updates one `update` command.
 *
 * Only operations whose per-caller answer survives batching are offered:
 *   - lookups by one key field (each caller gets the documents with its key);
 *   - inserts (each caller gets its document, or its own duplicate-key error);
 *   - updates whose caller needs no per-statement match count (each caller
 *     learns whether its statement upserted, or gets its own write error).
 * Conditional transitions that must know whether *they* matched stay single
 * commands (findOneAndUpdate).
 *
 * The shape of the DataLoader pattern (https://github.com/graphql/dataloader):
 * collect until the current turn ends, then send.
 */
import type { Model } from 'mongoose';
import {
  MongoBulkWriteError,
  MongoServerError,
  type AnyBulkWriteOperation,
  type WriteError,
} from 'mongodb';
import { insertPlanFor, type PlanResult } from './insert-plan.js';

/** Any mongoose model; the helpers work on documents as plain records. */
export interface ModelLike {
  readonly modelName: string;
}
type LooseModel = Model<Record<string, unknown>>;
const loose = (model: ModelLike): LooseModel => model as unknown as LooseModel;

/** At most this many callers share one command; the rest go in the next one. */
const MAX_BATCH = 500;

interface Waiting<I, O> {
  input: I;
  resolve: (output: O) => void;
  reject: (error: unknown) => void;
}

/** Each answer is either the caller's value or the caller's own error. */
type Outcome<O> = { ok: true; value: O } | { ok: false; error: unknown };

/**
 * Turns `run(inputs) -> outcomes (same order)` into a per-caller function whose
 * calls made in the same turn of the event loop share one `run`.
 */
export function coalesce<I, O>(
  run: (inputs: I[]) => Promise<Outcome<O>[]>,
): (input: I) => Promise<O> {
  let queue: Waiting<I, O>[] = [];
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    const batch = queue.slice(0, MAX_BATCH);
    queue = queue.slice(MAX_BATCH);
    if (queue.length > 0) schedule();
    run(batch.map((waiting) => waiting.input)).then(
      (outcomes) => {
        batch.forEach((waiting, i) => {
          const outcome = outcomes[i];
          if (!outcome) waiting.reject(new Error('coalesced call got no answer'));
          else if (outcome.ok) waiting.resolve(outcome.value);
          else waiting.reject(outcome.error);
        });
      },
      (error: unknown) => {
        for (const waiting of batch) waiting.reject(error);
      },
    );
  };
  const schedule = (): void => {
    scheduled = true;
    setImmediate(flush);
  };

  return (input) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ input, resolve, reject });
      if (!scheduled) schedule();
    });
}

/** One coalescer per model and call shape (WeakMap: a model of a test connection goes with it). */
const coalescers = new WeakMap<object, Map<string, unknown>>();

function coalescerFor<I, O>(
  model: object,
  shape: string,
  make: () => (input: I) => Promise<O>,
): (input: I) => Promise<O> {
  let byShape = coalescers.get(model);
  if (!byShape) {
    byShape = new Map();
    coalescers.set(model, byShape);
  }
  let found = byShape.get(shape) as ((input: I) => Promise<O>) | undefined;
  if (!found) {
    found = make();
    byShape.set(shape, found);
  }
  return found;
}

export interface FindByKeyOptions {
  /** Fields to return (MongoDB projection); the key field is always included. */
  projection?: Record<string, 0 | 1>;
  /** A fixed extra condition every caller of this shape shares (e.g. `{ provider: 'paystack' }`). */
  where?: Record<string, string | number | boolean>;
}

type KeyValue = string | number | { toHexString(): string };

function keyOf(value: unknown): string {
  if (value && typeof value === 'object' && 'toHexString' in value) {
    return (value as { toHexString(): string }).toHexString();
  }
  return String(value);
}

/**
 * Every document whose `field` equals `value` (lean), batched with the other
 * lookups of the same model, field and options in this turn.
 */
export function findAllByKey<T>(
  model: ModelLike,
  field: string,
  value: KeyValue,
  options: FindByKeyOptions = {},
): Promise<T[]> {
  const shape = `find:${field}:${JSON.stringify(options)}`;
  const lookup = coalescerFor<KeyValue, T[]>(model, shape, () =>
    coalesce<KeyValue, T[]>(async (values) => {
      const unique = [...new Map(values.map((v) => [keyOf(v), v])).values()];
      const projection = options.projection ? { ...options.projection, [field]: 1 } : undefined;
      const docs = await loose(model)
        .find({ ...options.where, [field]: { $in: unique } }, projection)
        .lean<Record<string, unknown>[]>();
      const byKey = new Map<string, T[]>();
      for (const doc of docs) {
        const key = keyOf(doc[field]);
        byKey.set(key, [...(byKey.get(key) ?? []), doc as T]);
      }
      return values.map((v) => ({ ok: true, value: byKey.get(keyOf(v)) ?? [] }));
    }),
  );
  return lookup(value);
}

/** The document whose unique `field` equals `value` (lean), or null; batched like findAllByKey. */
export async function findOneByKey<T>(
  model: ModelLike,
  field: string,
  value: KeyValue,
  options: FindByKeyOptions = {},
): Promise<T | null> {
  const [first] = await findAllByKey<T>(model, field, value, options);
  return first ?? null;
}

/**
 * Inserts one document through mongoose's casting, defaults, validation and
 * timestamps, batched with the other inserts into this model in this turn.
 * Resolves to the stored document (plain object); a duplicate key rejects
 * only its own caller, with the server's error (see isDuplicateKeyError).
 */
export function insertOne<T>(model: ModelLike, data: Record<string, unknown>): Promise<T> {
  const insert = coalescerFor<Record<string, unknown>, T>(model, 'insert', () =>
    coalesce<Record<string, unknown>, T>((batch) => insertBatch<T>(model, batch)),
  );
  return insert(data);
}

async function insertBatch<T>(
  model: ModelLike,
  batch: Record<string, unknown>[],
): Promise<Outcome<T>[]> {
  const outcomes: Outcome<T>[] = new Array<Outcome<T>>(batch.length);
  const objects: Record<string, unknown>[] = [];
  const positions: number[] = [];
  const Loose = loose(model);
  const plan = insertPlanFor(Loose);
  const now = new Date();
  const built = plan
    ? batch.map((data) => plan(data, now))
    : await Promise.all(batch.map((data) => viaDocument(Loose, data)));
  built.forEach((built, i) => {
    outcomes[i] = built as Outcome<T>;
    if (built.ok) {
      objects.push(built.value);
      positions.push(i);
    }
  });
  if (objects.length === 0) return outcomes;
  try {
    await Loose.collection.insertMany(objects, { ordered: false });
  } catch (error) {
    if (!(error instanceof MongoBulkWriteError)) throw error;
    const failed = writeErrorsOf(error);
    if (failed.size === 0) throw error;
    for (const [index, writeError] of failed) {
      const position = positions[index];
      if (position !== undefined) outcomes[position] = { ok: false, error: writeError };
    }
  }
  return outcomes;
}

export interface UpdateOneInput {
  filter: Record<string, unknown>;
  update: Record<string, unknown>;
  upsert?: boolean;
}

/**
 * One update statement, batched with the other updates of this model in this
 * turn into one `update` command (unordered: statements are independent, as
 * separate calls would be). Resolves to whether it upserted; per-statement
 * match counts do not survive batching, so use findOneAndUpdate where the
 * caller must know whether its own filter matched.
 */
export function updateOne(model: ModelLike, input: UpdateOneInput): Promise<{ upserted: boolean }> {
  const update = coalescerFor<UpdateOneInput, { upserted: boolean }>(model, 'update', () =>
    coalesce<UpdateOneInput, { upserted: boolean }>((batch) => updateBatch(model, batch)),
  );
  return update(input);
}

async function updateBatch(
  model: ModelLike,
  batch: UpdateOneInput[],
): Promise<Outcome<{ upserted: boolean }>[]> {
  const operations = batch.map((input): AnyBulkWriteOperation => ({
    updateOne: { filter: input.filter, update: input.update, upsert: input.upsert ?? false },
  }));
  const outcomes = batch.map((): Outcome<{ upserted: boolean }> => ({
    ok: true,
    value: { upserted: false },
  }));
  let upsertedIds: Record<number, unknown>;
  try {
    const result = await loose(model).bulkWrite(operations as never, { ordered: false });
    upsertedIds = result.upsertedIds;
  } catch (error) {
    if (!(error instanceof MongoBulkWriteError)) throw error;
    const failed = writeErrorsOf(error);
    if (failed.size === 0) throw error;
    for (const [index, writeError] of failed) outcomes[index] = { ok: false, error: writeError };
    upsertedIds = error.result.upsertedIds;
  }
  for (const index of Object.keys(upsertedIds)) {
    const outcome = outcomes[Number(index)];
    if (outcome?.ok) outcome.value = { upserted: true };
  }
  return outcomes;
}

/** The document mongoose would store for `data`, built through a mongoose Document (schemas without an insert plan). */
async function viaDocument(Loose: LooseModel, data: Record<string, unknown>): Promise<PlanResult> {
  let doc;
  try {
    doc = new Loose(data);
  } catch (error) {
    // strict: 'throw' rejects unknown fields in the constructor.
    return { ok: false, error: error as Error };
  }
  try {
    await doc.validate();
  } catch (error) {
    return { ok: false, error: error as Error };
  }
  (doc as unknown as { initializeTimestamps?: () => void }).initializeTimestamps?.();
  const versionKey = Loose.schema.get('versionKey');
  if (typeof versionKey === 'string') doc.set(versionKey, 0);
  return { ok: true, value: doc.toObject({ depopulate: true, virtuals: false, getters: false }) };
}

/** The statement index -> a server error of its own (code, message), for each failed statement. */
function writeErrorsOf(error: MongoBulkWriteError): Map<number, MongoServerError> {
  const failed = new Map<number, MongoServerError>();
  const reported = error.writeErrors as WriteError | WriteError[];
  const list: WriteError[] = Array.isArray(reported) ? reported : [reported];
  for (const writeError of list) {
    const serverError = new MongoServerError({
      message: writeError.errmsg ?? 'write failed',
      code: writeError.code,
      errmsg: writeError.errmsg,
      errInfo: writeError.errInfo,
    });
    failed.set(writeError.index, serverError);
  }
  return failed;
}
