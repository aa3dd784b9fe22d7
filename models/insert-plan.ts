/**
 * A compiled insert for one schema: the document mongoose would store for
 * `new Model(data)` + `validateSync()` + `toObject()`, computed straight from
 * the plain input with the schema's own SchemaTypes (their setters, casts,
 * defaults and validators), without building a mongoose Document.
 *
 * Why: the webhook path inserts an event, an invoice, a notification and often
 * a subscription or ledger entry per payment; building and validating a
 * Document for each was a quarter of Atlantic's CPU per event. Running the same
 * SchemaType functions on plain values costs a small fraction of that.
 *
 * Only what the models here use is compiled: String, Number, Boolean, Date,
 * ObjectId, Mixed, arrays of those, nested objects, single nested and array
 * subdocuments, `strict` true or 'throw', `timestamps`, `minimize`, synchronous
 * validators. A schema with anything else (maps, conditional `required`,
 * discriminators, custom types, hooks on validate) gets no plan
 * (`insertPlanFor` returns null) and its inserts take mongoose's own path.
 * tests/integration/insert-plan.test.ts holds the plan to mongoose's answer
 * for every model.
 */
import mongoose, { type Schema, type SchemaType } from 'mongoose';

export type PlanResult = { ok: true; value: Record<string, unknown> } | { ok: false; error: Error };

export type InsertPlan = (data: Record<string, unknown>, now: Date) => PlanResult;

const { ValidationError, StrictModeError, CastError } = mongoose.Error;

/** Leaf kinds the plan knows how to cast. */
const PRIMITIVES = new Set(['String', 'Number', 'Boolean', 'Date', 'ObjectId', 'Decimal128']);

interface Field {
  /** Path in the schema ('buyer.email'), pieces pre-split. */
  path: string;
  pieces: string[];
  type: SchemaType;
  kind: 'primitive' | 'mixed' | 'array' | 'subdoc' | 'subdocs';
  /** Element SchemaType for 'array'. */
  element?: SchemaType;
  /** Plan of the embedded schema for 'subdoc' / 'subdocs'. */
  sub?: CompiledSchema;
}

interface CompiledSchema {
  fields: Field[];
  /** Top-level keys the input may carry: field heads and nested object heads. */
  strict: boolean | 'throw';
  /** Known paths and nested-object prefixes, for the strict check. */
  known: Set<string>;
  nested: Set<string>;
  timestamps: { createdAt: string | null; updatedAt: string | null } | null;
  versionKey: string | null;
  minimize: boolean;
}

type SchemaTypeInternals = SchemaType & {
  instance: string;
  defaultValue?: unknown;
  embeddedSchemaType?: SchemaType & { instance: string };
  schema?: Schema;
  $isSingleNested?: boolean;
  $isMongooseDocumentArray?: boolean;
  $isMongooseArray?: boolean;
  originalRequiredValue?: unknown;
  getDefault: (scope: unknown, init: boolean) => unknown;
  applySetters: (value: unknown, scope: unknown, init: boolean) => unknown;
  doValidateSync: (value: unknown, scope: unknown, options?: { path: string }) => Error | null;
  validators: { validator: unknown }[];
};

const compiled = new WeakMap<Schema, CompiledSchema | null>();
const baseValidate = (mongoose.SchemaType.prototype as unknown as SchemaTypeInternals)
  .doValidateSync;

/** The compiled insert for this model's schema, or null when it has features the plan does not cover. */
export function insertPlanFor(model: { schema: Schema; modelName: string }): InsertPlan | null {
  const schema = compile(model.schema);
  if (!schema) return null;
  return (data, now) => {
    const errors = new Errors();
    try {
      const value = build(schema, data, now, '', errors);
      if (errors.found.length === 0) return { ok: true, value };
      const error = new ValidationError();
      error.message = `${model.modelName} validation failed`;
      for (const [path, failure] of errors.found) error.addError(path, failure as never);
      return { ok: false, error };
    } catch (error) {
      if (error instanceof StrictModeError) return { ok: false, error };
      throw error;
    }
  };
}

function compile(schema: Schema): CompiledSchema | null {
  if (compiled.has(schema)) return compiled.get(schema) ?? null;
  compiled.set(schema, null);
  const plan = compileUncached(schema);
  compiled.set(schema, plan);
  return plan;
}

function compileUncached(schema: Schema): CompiledSchema | null {
  const options = schema.options as {
    strict?: boolean | 'throw';
    timestamps?: boolean | { createdAt?: string | boolean; updatedAt?: string | boolean };
    versionKey?: string | false;
    minimize?: boolean;
    discriminatorKey?: string;
  };
  const strict = options.strict ?? true;
  if (strict !== true && strict !== 'throw') return null;
  const internals = schema as unknown as {
    discriminators?: unknown;
    s: { hooks: { _pres: Map<string, unknown[]> } };
    nested: Record<string, boolean>;
    virtuals: Record<string, unknown>;
  };
  if (internals.discriminators) return null;
  // A pre('validate') hook could change what gets stored (save hooks never
  // ran for these inserts: they go to the collection, not through save()).
  if ((internals.s.hooks._pres.get('validate') ?? []).length > 0) return null;

  const timestamps = timestampFields(options.timestamps);
  const versionKey = options.versionKey === false ? null : (options.versionKey ?? '__v');
  const fields: Field[] = [];
  let supported = true;
  schema.eachPath((path, rawType) => {
    const type = rawType as SchemaTypeInternals;
    if (path === versionKey) return;
    if (timestamps && (path === timestamps.createdAt || path === timestamps.updatedAt)) return;
    const field = compileField(path, type);
    if (field) fields.push(field);
    else supported = false;
  });
  if (!supported) return null;

  const known = new Set(fields.map((field) => field.path));
  if (versionKey) known.add(versionKey);
  if (timestamps?.createdAt) known.add(timestamps.createdAt);
  if (timestamps?.updatedAt) known.add(timestamps.updatedAt);
  return {
    fields,
    strict,
    known,
    nested: new Set(Object.keys(internals.nested)),
    timestamps,
    versionKey,
    minimize: options.minimize ?? true,
  };
}

function compileField(path: string, type: SchemaTypeInternals): Field | null {
  const usable = (validator: unknown): boolean =>
    typeof validator === 'function' || validator instanceof RegExp;
  if (!type.validators.every((v) => usable(v.validator))) {
    return null;
  }
  const pieces = path.split('.');
  if (type.$isSingleNested || type.$isMongooseDocumentArray) {
    const sub = type.schema ? compile(type.schema) : null;
    if (!sub) return null;
    return { path, pieces, type, kind: type.$isSingleNested ? 'subdoc' : 'subdocs', sub };
  }
  if (type.$isMongooseArray) {
    const element = type.embeddedSchemaType;
    if (!element || !PRIMITIVES.has(element.instance)) return null;
    return { path, pieces, type, kind: 'array', element };
  }
  if (type.instance === 'Mixed') return { path, pieces, type, kind: 'mixed' };
  if (PRIMITIVES.has(type.instance)) return { path, pieces, type, kind: 'primitive' };
  return null;
}

function timestampFields(option: unknown): CompiledSchema['timestamps'] {
  if (!option) return null;
  if (option === true) return { createdAt: 'createdAt', updatedAt: 'updatedAt' };
  const named = option as { createdAt?: string | boolean; updatedAt?: string | boolean };
  const name = (value: string | boolean | undefined, fallback: string): string | null =>
    value === false ? null : typeof value === 'string' ? value : fallback;
  return {
    createdAt: name(named.createdAt, 'createdAt'),
    updatedAt: name(named.updatedAt, 'updatedAt'),
  };
}

/** Failures by path, turned into one ValidationError only if there are any (an Error costs a stack trace). */
class Errors {
  readonly found: [string, Error][] = [];
  addError(path: string, error: Error): void {
    this.found.push([path, error]);
  }
}

/** The stored document for `data`; validation failures are added to `errors` under `prefix`. */
function build(
  schema: CompiledSchema,
  data: Record<string, unknown>,
  now: Date,
  prefix: string,
  errors: Errors,
): Record<string, unknown> {
  checkStrict(schema, data, '', prefix);
  const out: Record<string, unknown> = {};
  const toValidate: [Field, unknown][] = [];
  for (const field of schema.fields) {
    const given = valueAt(data, field.pieces);
    const value =
      given === undefined ? defaultOf(field) : cast(field, given, now, prefix + field.path, errors);
    if (value === INVALID) continue;
    if (value !== undefined) setAt(out, field.pieces, value);
    toValidate.push([field, value]);
  }
  // Validators see the cast document as `this`, as they see the Document in
  // mongoose (a conditional `required` reads a sibling field).
  for (const [field, value] of toValidate) validate(field, value, out, prefix, errors);

  if (schema.timestamps) {
    // initializeTimestamps(): a value the caller gave is kept, else now.
    for (const name of [schema.timestamps.createdAt, schema.timestamps.updatedAt]) {
      if (name === null) continue;
      const given = data[name];
      out[name] = given == null ? now : given instanceof Date ? given : new Date(given as string);
    }
  }
  if (schema.versionKey && prefix === '') out[schema.versionKey] = 0;
  return schema.minimize ? minimize(out) : out;
}

const INVALID = Symbol('invalid');

function defaultOf(field: Field): unknown {
  const type = field.type as SchemaTypeInternals;
  if (type.defaultValue === undefined) return undefined;
  const value = type.getDefault(null, false);
  if (value == null) return value;
  // Defaults of arrays and subdocuments come back as mongoose containers;
  // store them as plain values, as toObject() would.
  const plain = (item: unknown): unknown =>
    typeof (item as { toObject?: unknown })?.toObject === 'function'
      ? (item as { toObject: () => unknown }).toObject()
      : item;
  if (field.kind === 'array' || field.kind === 'subdocs')
    return Array.from(value as unknown[], plain);
  return plain(value);
}

/** The value as stored, or INVALID after adding the cast error (at `path` or its elements). */
function cast(field: Field, value: unknown, now: Date, path: string, errors: Errors): unknown {
  if (value === null) return null;
  const type = field.type as SchemaTypeInternals;
  switch (field.kind) {
    case 'primitive':
      try {
        return type.applySetters(value, null, false);
      } catch (error) {
        errors.addError(path, asCastError(error, type, value, path));
        return INVALID;
      }
    case 'mixed':
      return value;
    case 'array': {
      // A single value is stored as a one-element list; each element is cast
      // on its own and fails under its own path (`roles.0`).
      const element = field.element as SchemaTypeInternals;
      const list = Array.isArray(value) ? value : [value];
      let failed = false;
      const cast = list.map((item: unknown, index) => {
        if (item == null) return item;
        try {
          return element.applySetters(item, null, false);
        } catch (error) {
          errors.addError(`${path}.${index}`, asCastError(error, element, item, path));
          failed = true;
          return item;
        }
      });
      return failed ? INVALID : cast;
    }
    case 'subdoc':
    case 'subdocs': {
      // Unknown fields in a subdocument (strict: 'throw') fail the whole path,
      // as mongoose's cast of the subdocument does; its field errors are kept
      // under their own paths (`lines.0.amountMinor`).
      const sub = field.sub as CompiledSchema;
      const inner = new Errors();
      const one = (item: unknown, at: string): unknown => {
        if (item == null) return item;
        if (typeof item !== 'object' || Array.isArray(item)) {
          throw new CastError('Embedded', item, path);
        }
        return build(sub, item as Record<string, unknown>, now, at, inner);
      };
      let result: unknown;
      try {
        if (field.kind === 'subdoc') result = one(value, `${path}.`);
        else {
          const list = Array.isArray(value) ? value : [value];
          result = list.map((item: unknown, index) => one(item, `${path}.${index}.`));
        }
      } catch (error) {
        errors.addError(path, asCastError(error, type, value, path));
        return INVALID;
      }
      for (const [at, error] of inner.found) errors.addError(at, error);
      return result;
    }
  }
}

function asCastError(
  error: unknown,
  type: SchemaTypeInternals,
  value: unknown,
  path: string,
): Error {
  if (error instanceof CastError) return error;
  const cast = new CastError(
    type.instance,
    value,
    path,
    error instanceof Error ? error : undefined,
  );
  return cast;
}

/** The path's own validators (required, min, enum, custom) and, for lists of values, each element's. */
function validate(
  field: Field,
  value: unknown,
  scope: object,
  prefix: string,
  errors: Errors,
): void {
  const type = field.type as SchemaTypeInternals;
  const path = prefix + field.path;
  // Subdocuments validated their own fields in build(); here only the path's validators run.
  const own =
    field.kind === 'subdoc' || field.kind === 'subdocs'
      ? baseValidate.call(type, value, scope, { path: type.path })
      : type.doValidateSync(value, scope, { path: type.path });
  if (own) errors.addError(path, own);
  if (field.kind === 'array' && Array.isArray(value)) {
    const element = field.element as SchemaTypeInternals;
    value.forEach((item: unknown, index) => {
      const error = element.doValidateSync(item, scope, { path: `${type.path}.${index}` });
      if (error) errors.addError(`${path}.${index}`, error);
    });
  }
}

/** Unknown keys: dropped under `strict: true` (by only copying known paths), an error under 'throw'. */
function checkStrict(
  schema: CompiledSchema,
  data: Record<string, unknown>,
  base: string,
  prefix: string,
): void {
  if (schema.strict !== 'throw') return;
  for (const key of Object.keys(data)) {
    const path = base + key;
    if (schema.known.has(path)) continue;
    const value = data[key];
    if (schema.nested.has(path) && value !== null && typeof value === 'object') {
      checkStrict(schema, value as Record<string, unknown>, `${path}.`, prefix);
      continue;
    }
    if (value === undefined) continue;
    throw new StrictModeError(prefix + path);
  }
}

function valueAt(data: Record<string, unknown>, pieces: string[]): unknown {
  let current: unknown = data;
  for (const piece of pieces) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[piece];
  }
  return current;
}

function setAt(out: Record<string, unknown>, pieces: string[], value: unknown): void {
  let target = out;
  for (let i = 0; i < pieces.length - 1; i += 1) {
    const piece = pieces[i] as string;
    target = (target[piece] ??= {}) as Record<string, unknown>;
  }
  target[pieces[pieces.length - 1] as string] = value;
}

/** toObject()'s minimize: empty plain objects are left out. */
function minimize(object: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(object)) {
    const value = object[key];
    if (isPlainObject(value)) {
      const inner = minimize(value);
      if (Object.keys(inner).length === 0) delete object[key];
    }
  }
  return object;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}
