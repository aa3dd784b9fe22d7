/**
 * Exit locations and their pools, managed by admins (the bots wire the
 * commands). A location's `code` is what customers put after `-country-` in
 * the proxy username and what plans and subscriptions name.
 *
 * Each change is one update of one Location document (mongoose timestamps move
 * `updatedAt`, which gateways poll). Exit health is written by gateways when
 * a dial fails, so every gateway skips a broken upstream within a second.
 */
import { notifyAdmins } from './notifications.js';
import mongoose, { type Connection } from 'mongoose';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import { isDuplicateKeyError } from '../models/errors.js';
import {
  LOCATION_CODE_PATTERN,
  exitKinds,
  locationModelOn,
  type ExitKind,
  type LocationModel,
} from '../models/location.js';

export interface LocationDatabaseOption {
  /** Defaults to mongoose's default connection; tests pass another to act as a second process. */
  connection?: Connection;
}

export interface ExitView {
  exitId: string;
  kind: ExitKind;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  healthy: boolean;
  failures: number;
  lastError?: string;
  /** While unhealthy: when it may be tried again. */
  retryAfter?: Date;
}

export interface LocationView {
  code: string;
  countryCode: string;
  city?: string;
  label: string;
  exits: ExitView[];
  updatedAt: Date;
}

export interface LocationInput {
  code?: string;
  countryCode: string;
  city?: string;
  label: string;
}

export interface ExitInput {
  exitId: string;
  kind: ExitKind;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
}

/** How long an exit that failed a dial is skipped before it is tried again. */
export const DEFAULT_EXIT_RETRY_MS = 30_000;

interface StoredExit {
  exitId: string;
  kind: ExitKind;
  host?: string | null;
  port?: number | null;
  username?: string | null;
  password?: string | null;
  healthy: boolean;
  failures: number;
  lastError?: string | null;
  retryAfter?: Date | null;
}

interface StoredLocation {
  code: string;
  countryCode: string;
  city?: string | null;
  label: string;
  exits: StoredExit[];
  updatedAt: Date;
}

function model(options: LocationDatabaseOption): LocationModel {
  return locationModelOn(options.connection ?? mongoose.connection);
}

function present<T>(value: T | null | undefined): T | undefined {
  return value === null ? undefined : value;
}

function exitView(exit: StoredExit): ExitView {
  return {
    exitId: exit.exitId,
    kind: exit.kind,
    host: present(exit.host),
    port: present(exit.port),
    username: present(exit.username),
    password: present(exit.password),
    healthy: exit.healthy,
    failures: exit.failures,
    lastError: present(exit.lastError),
    retryAfter: present(exit.retryAfter),
  };
}

function view(location: StoredLocation): LocationView {
  return {
    code: location.code,
    countryCode: location.countryCode,
    city: present(location.city),
    label: location.label,
    exits: location.exits.map(exitView),
    updatedAt: location.updatedAt,
  };
}

function invalid(field: string, message: string): DomainError {
  return new DomainError('VALIDATION_FAILED', message, { details: { field } });
}

function normaliseCode(code: string): string {
  const normalised = code.trim().toLowerCase();
  if (!LOCATION_CODE_PATTERN.test(normalised)) {
    throw invalid('code', 'A location code is 2 to 16 letters and digits, starting with a letter.');
  }
  return normalised;
}

function checkExit(exit: ExitInput): ExitInput {
  if (!/^[A-Za-z0-9_.:]{1,64}$/.test(exit.exitId)) {
    throw invalid('exitId', 'An exit id is 1 to 64 letters, digits, `_`, `.` or `:`.');
  }
  if (!(exitKinds as readonly string[]).includes(exit.kind)) {
    throw invalid('kind', `An exit is one of: ${exitKinds.join(', ')}.`);
  }
  if (exit.kind === 'direct') return { exitId: exit.exitId, kind: 'direct' };
  if (!exit.host || exit.host.trim() === '')
    throw invalid('host', 'An upstream exit needs a host.');
  if (
    exit.port === undefined ||
    !Number.isSafeInteger(exit.port) ||
    exit.port < 1 ||
    exit.port > 65_535
  ) {
    throw invalid('port', 'An upstream exit needs a port from 1 to 65535.');
  }
  return { ...exit, host: exit.host.trim() };
}

function notFound(code: string): DomainError {
  return new DomainError('NOT_FOUND', `There is no location "${code}".`, { details: { code } });
}

/** Adds a location with an empty pool (add exits next). Its code defaults to the country code. */
export async function addLocation(
  input: LocationInput,
  options: LocationDatabaseOption = {},
): Promise<LocationView> {
  const countryCode = input.countryCode.trim().toLowerCase();
  if (!/^[a-z]{2}$/.test(countryCode))
    throw invalid('countryCode', 'A country code is two letters.');
  const code = normaliseCode(input.code ?? countryCode);
  if (input.label.trim() === '') throw invalid('label', 'A location needs a label.');
  try {
    const created = await model(options).create({
      code,
      countryCode,
      city: input.city?.trim() || undefined,
      label: input.label.trim(),
      exits: [],
    });
    return view(created.toObject<StoredLocation>());
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
    throw new DomainError('CONFLICT', `The location "${code}" already exists.`, {
      details: { code },
    });
  }
}

/** Changes a location's label or city (its code is what customers type, so it stays). */
export async function updateLocation(
  code: string,
  changes: { label?: string; city?: string },
  options: LocationDatabaseOption = {},
): Promise<LocationView> {
  const set: Record<string, string> = {};
  if (changes.label !== undefined) {
    if (changes.label.trim() === '') throw invalid('label', 'A location needs a label.');
    set.label = changes.label.trim();
  }
  if (changes.city !== undefined) set.city = changes.city.trim();
  const updated = await model(options)
    .findOneAndUpdate({ code: normaliseCode(code) }, { $set: set }, { returnDocument: 'after' })
    .lean<StoredLocation>();
  if (!updated) throw notFound(code);
  return view(updated);
}

/** Removes a location; customers who name it are told it is unknown from then on. */
export async function removeLocation(
  code: string,
  options: LocationDatabaseOption = {},
): Promise<void> {
  const result = await model(options).deleteOne({ code: normaliseCode(code) });
  if (result.deletedCount === 0) throw notFound(code);
}

/** Adds an exit to a location's pool; an exit id already in the pool is a CONFLICT. */
export async function addExit(
  code: string,
  exit: ExitInput,
  options: LocationDatabaseOption = {},
): Promise<LocationView> {
  const checked = checkExit(exit);
  const updated = await model(options)
    .findOneAndUpdate(
      { code: normaliseCode(code), 'exits.exitId': { $ne: checked.exitId } },
      { $push: { exits: { ...checked, healthy: true, failures: 0 } } },
      { returnDocument: 'after' },
    )
    .lean<StoredLocation>();
  if (updated) return view(updated);
  if (!(await model(options).exists({ code: normaliseCode(code) }))) throw notFound(code);
  throw new DomainError('CONFLICT', `The exit "${checked.exitId}" is already in ${code}.`, {
    details: { code, exitId: checked.exitId },
  });
}

export async function removeExit(
  code: string,
  exitId: string,
  options: LocationDatabaseOption = {},
): Promise<LocationView> {
  const updated = await model(options)
    .findOneAndUpdate(
      { code: normaliseCode(code), 'exits.exitId': exitId },
      { $pull: { exits: { exitId } } },
      { returnDocument: 'after' },
    )
    .lean<StoredLocation>();
  if (!updated) throw exitNotFound(code, exitId);
  return view(updated);
}

/**
 * Marks an exit healthy (an admin, or a probe that got through) or unhealthy
 * (a gateway's dial failed: it is skipped for `retryMs`, then tried again).
 *
 * The exit is rewritten whole (`exits.$`), guarded by the state just read:
 * the in-process engine (mingo) takes one positional path per update, where
 * MongoDB would take several. When gateways race on the same failing exit,
 * each retry reads the newer state, so failures are counted one by one.
 */
export async function markExitHealth(
  code: string,
  exitId: string,
  health: { healthy: true } | { healthy: false; error: string; retryMs?: number },
  options: LocationDatabaseOption & { clock: Clock },
): Promise<void> {
  const now = options.clock.now();
  const changed = await updateExit(code, exitId, options, (exit) => {
    if (health.healthy) {
      const { retryAfter: _retry, ...rest } = exit;
      return { ...rest, healthy: true, failures: 0 };
    }
    return {
      ...exit,
      healthy: false,
      failures: exit.failures + 1,
      lastError: health.error.slice(0, 500),
      lastFailureAt: now,
      retryAfter: new Date(now.getTime() + (health.retryMs ?? DEFAULT_EXIT_RETRY_MS)),
    };
  });
  if (!health.healthy && changed) await alertIfPoolDown(code, health.error, options);
}

/**
 * Every exit of the location failing: the admins hear of it, once per
 * location and hour however many gateways keep failing (the dedup key).
 */
async function alertIfPoolDown(
  code: string,
  error: string,
  options: LocationDatabaseOption & { clock: Clock },
): Promise<void> {
  const location = await model(options)
    .findOne({ code: normaliseCode(code) }, { exits: 1, label: 1 })
    .lean<{ label?: string; exits: StoredExitFields[] }>();
  if (!location || location.exits.length === 0) return;
  if (location.exits.some((exit) => exit.healthy)) return;
  const now = options.clock.now();
  await notifyAdmins(
    {
      event: 'exit_pool_down',
      dedupKey: `exit_pool_down:${normaliseCode(code)}:${now.toISOString().slice(0, 13)}`,
      data: {
        location: normaliseCode(code),
        label: location.label,
        exits: location.exits.map((exit) => exit.exitId),
        lastError: error.slice(0, 200),
      },
    },
    { clock: options.clock },
  );
}

/** Attempts before a contended exit update gives up (the exit is marked by whoever won). */
const MAX_EXIT_UPDATE_ATTEMPTS = 5;

/** Replaces one exit by `change(exit as read)`, if nobody changed it in between; false when it gave up. */
async function updateExit(
  code: string,
  exitId: string,
  options: LocationDatabaseOption,
  change: (exit: StoredExitFields) => StoredExitFields,
): Promise<boolean> {
  const Location = model(options);
  const locationCode = normaliseCode(code);
  for (let attempt = 0; attempt < MAX_EXIT_UPDATE_ATTEMPTS; attempt++) {
    const stored = await Location.findOne(
      { code: locationCode, 'exits.exitId': exitId },
      { exits: 1 },
    ).lean<StoredLocation>();
    const exit = stored?.exits.find((candidate) => candidate.exitId === exitId);
    if (!exit) throw exitNotFound(code, exitId);
    const asRead = withoutNulls(exit);
    const guard = { exitId, healthy: exit.healthy, failures: exit.failures };
    const result = await Location.updateOne(
      { code: locationCode, exits: { $elemMatch: guard } },
      { $set: { 'exits.$': change(asRead) } },
    );
    if (result.matchedCount === 1) return true;
  }
  return false;
}

type StoredExitFields = StoredExit & { lastFailureAt?: Date | null };

function withoutNulls(exit: StoredExitFields): StoredExitFields {
  return Object.fromEntries(
    Object.entries(exit).filter(([, value]) => value !== null && value !== undefined),
  ) as StoredExitFields;
}

function exitNotFound(code: string, exitId: string): DomainError {
  return new DomainError('NOT_FOUND', `There is no exit "${exitId}" in ${code}.`, {
    details: { code, exitId },
  });
}

/** Every location with its pool, by code. */
export async function listLocations(options: LocationDatabaseOption = {}): Promise<LocationView[]> {
  const stored = await model(options).find({}).sort({ code: 1 }).lean<StoredLocation[]>();
  return stored.map(view);
}
