/**
 * The audit trail: what admins (and Atlantic itself, for actions taken on
 * their behalf) did, kept for operators to read. An entry is written before
 * the action it records moves anything, so an action that dies half way is
 * still on record; a `key` makes a retried action one entry.
 */
import { isDuplicateKeyError } from '../models/errors.js';
import {
  AuditEntry,
  auditChannels,
  type AuditChannel,
  type AuditEntryRecord,
} from '../models/audit-entry.js';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';

export { auditChannels };
export type { AuditChannel };

/** Who acted: an admin's account id, or 'system'. */
export type AuditActor = string;

export interface AuditInput {
  actor: AuditActor;
  channel: AuditChannel;
  /** Dotted verb: `refund.requested`. */
  action: string;
  target: { kind: string; id: string };
  details?: Record<string, unknown>;
  /** Makes a repeat of the same action one entry (e.g. `refund.requested:<refund id>`). */
  key?: string;
}

export interface AuditView {
  id: string;
  actor: AuditActor;
  channel: AuditChannel;
  action: string;
  target: { kind: string; id: string };
  details: Record<string, unknown>;
  at: Date;
}

/** Records an action once per key (without a key, every call is an entry). */
export async function recordAudit(
  input: AuditInput,
  { clock }: { clock: Clock },
): Promise<AuditView> {
  if (input.actor !== 'system' && !/^[0-9a-f]{24}$/i.test(input.actor)) {
    throw new DomainError('VALIDATION_FAILED', 'An audit actor is an account id or "system".', {
      details: { field: 'actor' },
    });
  }
  try {
    const created = await AuditEntry.create({
      actor: input.actor,
      channel: input.channel,
      action: input.action,
      target: input.target,
      details: input.details ?? {},
      at: clock.now(),
      ...(input.key === undefined ? {} : { key: input.key }),
    });
    return view(created.toObject());
  } catch (error) {
    if (input.key === undefined || !isDuplicateKeyError(error)) throw error;
    const existing = await findAuditByKey(input.key);
    if (!existing) throw error;
    return existing;
  }
}

/**
 * The newest entries first, filtered by who, what, about what and through
 * which channel; `before` pages back (the `at` of the last entry seen).
 */
export async function listAudit(
  filter: {
    target?: { kind?: string | undefined; id?: string | undefined };
    actor?: AuditActor;
    action?: string;
    channel?: AuditChannel;
    before?: Date;
    limit?: number;
  } = {},
): Promise<AuditView[]> {
  const query: Record<string, unknown> = {};
  if (filter.target) {
    if (filter.target.kind !== undefined) query['target.kind'] = filter.target.kind;
    if (filter.target.id !== undefined) query['target.id'] = filter.target.id;
  }
  if (filter.actor !== undefined) query.actor = filter.actor;
  if (filter.action !== undefined) query.action = filter.action;
  if (filter.channel !== undefined) query.channel = filter.channel;
  if (filter.before !== undefined) query.at = { $lt: filter.before };
  const entries = await AuditEntry.find(query)
    .sort({ at: -1, _id: -1 })
    .limit(Math.min(Math.max(filter.limit ?? 50, 1), 500))
    .lean<AuditEntryRecord[]>();
  return entries.map(view);
}

/** The entry recorded under `key` (one per repeatable action), or null. */
export async function findAuditByKey(key: string): Promise<AuditView | null> {
  const entry = await AuditEntry.findOne({ key }).lean<AuditEntryRecord>();
  return entry ? view(entry) : null;
}

function view(entry: AuditEntryRecord): AuditView {
  return {
    id: String(entry._id),
    actor: entry.actor,
    channel: entry.channel,
    action: entry.action,
    target: { kind: entry.target.kind, id: entry.target.id },
    details: (entry.details ?? {}) as Record<string, unknown>,
    at: entry.at,
  };
}
