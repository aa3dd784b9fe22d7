/**
 * The compiled insert plan (models/insert-plan.ts) must store exactly what
 * mongoose would: for every model, documents generated from its schema (valid
 * ones, and variants with each field missing, null, of the wrong type, out of
 * range, padded with spaces, plus an unknown field) go through both the plan
 * and mongoose's Document (`new Model(data)`, validateSync, toObject), and the
 * stored document, or the set of failing paths, must be the same.
 */
import { describe, expect, it } from '@jest/globals';
import mongoose, { type Model, type Schema, type SchemaType } from 'mongoose';
import * as models from '../../models/index.js';
import { insertPlanFor } from '../../models/insert-plan.js';

type Loose = Model<Record<string, unknown>>;
type Internals = SchemaType & {
  instance: string;
  enumValues?: unknown[];
  options: { min?: number; enum?: unknown };
  schema?: Schema;
  embeddedSchemaType?: Internals;
  $isSingleNested?: boolean;
  $isMongooseDocumentArray?: boolean;
  $isMongooseArray?: boolean;
};

const allModels = (Object.values(models) as unknown[]).filter(
  (value): value is Loose =>
    typeof value === 'function' && (value as { modelName?: unknown }).modelName !== undefined,
);

const now = new Date('2026-11-26T10:00:00.000Z');

function sampleFor(type: Internals): unknown {
  if (type.$isSingleNested && type.schema) return sampleDocument(type.schema);
  if (type.$isMongooseDocumentArray && type.schema) return [sampleDocument(type.schema)];
  if (type.$isMongooseArray && type.embeddedSchemaType) return [sampleFor(type.embeddedSchemaType)];
  const listed: unknown = type.options.enum;
  const enumValues: unknown[] = type.enumValues ?? (Array.isArray(listed) ? listed : []);
  const firstEnum = enumValues.find((value) => value !== null);
  switch (type.instance) {
    case 'String':
      return firstEnum ?? 'sample';
    case 'Number':
      return firstEnum ?? Math.max(1, type.options.min ?? 1);
    case 'Boolean':
      return true;
    case 'Date':
      return new Date('2026-01-02T03:04:05.000Z');
    case 'ObjectId':
      return new mongoose.Types.ObjectId('65a000000000000000000001');
    case 'Mixed':
      return { note: 'mixed', nested: { n: 1 } };
    default:
      return undefined;
  }
}

function sampleDocument(schema: Schema): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  schema.eachPath((path, type) => {
    if (path === '_id' || path === '__v' || path === 'createdAt' || path === 'updatedAt') return;
    const value = sampleFor(type as Internals);
    if (value === undefined) return;
    setPath(doc, path, value);
  });
  return doc;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const pieces = path.split('.');
  let cursor = target;
  for (const piece of pieces.slice(0, -1))
    cursor = (cursor[piece] ??= {}) as Record<string, unknown>;
  cursor[pieces[pieces.length - 1] as string] = value;
}

function deletePath(target: Record<string, unknown>, path: string): void {
  const pieces = path.split('.');
  let cursor: Record<string, unknown> | undefined = target;
  for (const piece of pieces.slice(0, -1)) cursor = cursor?.[piece] as Record<string, unknown>;
  if (cursor) delete cursor[pieces[pieces.length - 1] as string];
}

/** Inputs for one model: the sample and its variants, each named. */
function inputsFor(model: Loose): [string, Record<string, unknown>][] {
  const base = sampleDocument(model.schema);
  const inputs: [string, Record<string, unknown>][] = [['valid sample', base]];
  model.schema.eachPath((path, rawType) => {
    if (['_id', '__v', 'createdAt', 'updatedAt'].includes(path)) return;
    const type = rawType as Internals;
    const variant = (name: string, change: (doc: Record<string, unknown>) => void): void => {
      const doc = copy(base);
      change(doc);
      inputs.push([`${path}: ${name}`, doc]);
    };
    variant('missing', (doc) => deletePath(doc, path));
    variant('null', (doc) => setPath(doc, path, null));
    variant('wrong type', (doc) => setPath(doc, path, { not: 'a value' }));
    if (type.instance === 'Number') {
      variant('negative', (doc) => setPath(doc, path, -5));
      variant('fraction', (doc) => setPath(doc, path, 2.5));
      variant('numeric string', (doc) => setPath(doc, path, '7'));
      variant('not a number', (doc) => setPath(doc, path, 'seven'));
    }
    if (type.instance === 'String') {
      variant('padded', (doc) => setPath(doc, path, `  ${String(sampleFor(type))}  `));
      variant('long', (doc) => setPath(doc, path, 'x'.repeat(5000)));
      variant('empty', (doc) => setPath(doc, path, ''));
      variant('number', (doc) => setPath(doc, path, 42));
    }
    if (type.instance === 'Date')
      variant('ISO string', (doc) => setPath(doc, path, '2026-05-06T07:08:09.000Z'));
    if (type.$isMongooseArray || type.$isMongooseDocumentArray) {
      variant('empty list', (doc) => setPath(doc, path, []));
    }
    if (type.$isMongooseDocumentArray && type.schema) {
      const element = sampleDocument(type.schema);
      const firstKey = Object.keys(element)[0];
      if (firstKey !== undefined) {
        variant('element with a null field', (doc) =>
          setPath(doc, path, [{ ...element, [firstKey]: null }]),
        );
      }
      variant('element with an unknown field', (doc) =>
        setPath(doc, path, [{ ...element, bogus: 1 }]),
      );
    }
  });
  inputs.push(['unknown field', { ...base, notInTheSchema: 'x' }]);
  inputs.push([
    'given _id and timestamps',
    { ...base, _id: '65a000000000000000000099', createdAt: '2026-03-04T00:00:00.000Z' },
  ]);
  return inputs;
}

/** A deep copy that keeps ObjectIds and Dates what they are (structuredClone would not). */
function copy<T>(value: T): T {
  if (value instanceof mongoose.Types.ObjectId || value instanceof Date) return value;
  if (Array.isArray(value)) return value.map((item: unknown) => copy(item)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, copy(v)])) as T;
  }
  return value;
}

/**
 * When a value inside a subdocument's list fails to cast, mongoose leaves the
 * list empty and also reports the list's own validators on it (a follow-on of
 * the same bad value); the plan reports the bad element only.
 */
function withoutFollowOns(mongooseAnswer: Answer, planAnswer: Answer): Answer {
  if (!('failed' in mongooseAnswer) || !('failed' in planAnswer)) return mongooseAnswer;
  const failed = mongooseAnswer.failed.filter(
    (path) =>
      planAnswer.failed.includes(path) ||
      !planAnswer.failed.some((planPath) => planPath.startsWith(`${path}.`)),
  );
  return { failed };
}

type Answer = { stored: unknown } | { failed: string[] } | { strict: true };

function viaMongoose(model: Loose, data: Record<string, unknown>): Answer {
  let doc;
  try {
    doc = new model(copy(data));
  } catch (error) {
    if (error instanceof mongoose.Error.StrictModeError) return { strict: true };
    throw error;
  }
  const invalid = doc.validateSync();
  if (invalid) return { failed: Object.keys(invalid.errors).sort() };
  (doc as unknown as { initializeTimestamps?: () => void }).initializeTimestamps?.();
  const versionKey = model.schema.get('versionKey');
  if (typeof versionKey === 'string') doc.set(versionKey, 0);
  return {
    stored: comparable(doc.toObject({ depopulate: true, virtuals: false, getters: false })),
  };
}

function viaPlan(model: Loose, data: Record<string, unknown>): Answer {
  const plan = insertPlanFor(model);
  if (!plan) throw new Error(`${model.modelName} has no insert plan`);
  const result = plan(copy(data), now);
  if (result.ok) return { stored: comparable(result.value) };
  if (result.error instanceof mongoose.Error.StrictModeError) return { strict: true };
  if (result.error instanceof mongoose.Error.ValidationError) {
    return { failed: Object.keys(result.error.errors).sort() };
  }
  throw result.error;
}

/** Generated ids and the insert time differ between two runs; everything else must not. */
function comparable(value: unknown, key = ''): unknown {
  if (value instanceof mongoose.Types.ObjectId)
    return key === '_id' ? 'an id' : value.toHexString();
  if (value instanceof Date)
    return key === 'createdAt' || key === 'updatedAt' ? 'a time' : value.toISOString();
  if (Array.isArray(value)) return value.map((item) => comparable(item));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .map(([k, v]) => [k, comparable(v, k)] as const)
        .sort(([a], [b]) => a.localeCompare(b)),
    );
  }
  return value;
}

describe('compiled insert plans', () => {
  it('cover every model, so no insert pays for a mongoose Document', () => {
    const without = allModels
      .filter((model) => insertPlanFor(model) === null)
      .map((m) => m.modelName);
    expect(without).toEqual([]);
    expect(allModels.length).toBeGreaterThanOrEqual(20);
  });

  for (const model of allModels) {
    it(`store what mongoose stores for ${model.modelName}, and refuse what it refuses`, () => {
      const inputs = inputsFor(model);
      expect(inputs.length).toBeGreaterThan(3);
      for (const [name, data] of inputs) {
        const planAnswer = viaPlan(model, data);
        const mongooseAnswer = withoutFollowOns(viaMongoose(model, data), planAnswer);
        expect({ input: name, answer: planAnswer }).toEqual({
          input: name,
          answer: mongooseAnswer,
        });
      }
    });
  }

  it('keeps the stored createdAt the caller gave, and stamps the insert time otherwise', () => {
    const plan = insertPlanFor(models.WebhookEvent);
    const data = sampleDocument(models.WebhookEvent.schema);
    const stamped = plan?.(data, now);
    const given = plan?.({ ...data, createdAt: new Date('2026-01-01T00:00:00.000Z') }, now);
    expect(stamped?.ok && stamped.value.createdAt).toEqual(now);
    expect(given?.ok && given.value.createdAt).toEqual(new Date('2026-01-01T00:00:00.000Z'));
  });
});
