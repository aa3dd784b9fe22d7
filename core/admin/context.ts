/**
 * Who may run admin operations, and the audit trail every one of them leaves.
 *
 * An admin is an active account that holds the `admin` role in the database,
 * or whose chat identity is named in configuration (ADMIN_TELEGRAM_IDS,
 * ADMIN_WHATSAPP_NUMBERS). A configured admin's account is given the role on
 * first use (audited `admin.bootstrapped`), because other core paths (the
 * refunds) ask the database; from then on configuration is only what keeps
 * the role from being taken away from chat (core/admin/admins.ts).
 *
 * Every operation calls `requireAdmin` first, so the REST API can reuse them
 * without checking anything itself: a refusal is audited (`admin.refused`,
 * with the operation attempted) and thrown as FORBIDDEN. `audited` writes the
 * entry before the action moves anything (core/audit.ts) and a second entry
 * (`<action>.failed`) when the action then fails, so the trail says what was
 * tried and what came of it.
 */
import { Types } from 'mongoose';
import type { Clock } from '../../lib/clock.js';
import { DomainError, isDomainError } from '../../lib/errors.js';
import { Account } from '../../models/account.js';
import { ChannelIdentity, type Channel } from '../../models/channel-identity.js';
import { recordAudit, type AuditChannel, type AuditInput } from '../audit.js';

/** Who is acting and through which channel (a chat, the REST API, a script). */
export interface AdminActor {
  /** The admin's account id (hex). */
  accountId: string;
  channel: AuditChannel;
}

/** Admins named in configuration, by chat identity. */
export interface ConfiguredAdmins {
  telegramIds: readonly number[];
  /** E.164 digits (a leading `+` or spaces are ignored). */
  whatsappNumbers: readonly string[];
}

/** What every admin operation takes. */
export interface AdminContext {
  actor: AdminActor;
  clock: Clock;
  /** Default: none (database admins only). */
  configuredAdmins?: ConfiguredAdmins | undefined;
}

/** The admin an operation runs as, once checked. */
export interface CheckedAdmin {
  accountId: string;
  email: string | null;
  /** Named in configuration (cannot be removed from chat). */
  configured: boolean;
}

interface StoredAdminAccount {
  _id: Types.ObjectId;
  email?: string | null;
  status: string;
  roles: string[];
}

const digits = (value: string): string => value.replace(/\D/g, '');

/** Whether one chat identity is named in configuration. */
export function isConfiguredIdentity(
  configured: ConfiguredAdmins | undefined,
  identity: { channel: Channel; externalId: string },
): boolean {
  if (!configured) return false;
  if (identity.channel === 'telegram') {
    return configured.telegramIds.some((id) => String(id) === identity.externalId.trim());
  }
  const number = digits(identity.externalId);
  return number !== '' && configured.whatsappNumbers.some((n) => digits(n) === number);
}

/** Whether any chat identity of the account is named in configuration. */
export async function isConfiguredAccount(
  configured: ConfiguredAdmins | undefined,
  accountId: Types.ObjectId,
): Promise<boolean> {
  if (!configured) return false;
  if (configured.telegramIds.length === 0 && configured.whatsappNumbers.length === 0) return false;
  const identities = await ChannelIdentity.find({ accountId }, { channel: 1, externalId: 1 }).lean<
    { channel: Channel; externalId: string }[]
  >();
  return identities.some((identity) => isConfiguredIdentity(configured, identity));
}

async function loadActor(
  ctx: AdminContext,
): Promise<{ account: StoredAdminAccount | null; configured: boolean }> {
  if (
    !Types.ObjectId.isValid(ctx.actor.accountId) ||
    !/^[0-9a-f]{24}$/i.test(ctx.actor.accountId)
  ) {
    return { account: null, configured: false };
  }
  const id = new Types.ObjectId(ctx.actor.accountId);
  const [account, configured] = await Promise.all([
    Account.findById(id, { email: 1, status: 1, roles: 1 }).lean<StoredAdminAccount>(),
    isConfiguredAccount(ctx.configuredAdmins, id),
  ]);
  return { account, configured };
}

/** Whether the actor may run admin operations (nothing recorded; for menus and shared commands). */
export async function isAdmin(ctx: AdminContext): Promise<boolean> {
  const { account, configured } = await loadActor(ctx);
  return account?.status === 'active' && (configured || account.roles.includes('admin'));
}

/**
 * Checks that the actor is an admin, or records the refused attempt at
 * `attempted` (the operation's name) and throws FORBIDDEN. A configured
 * admin's account is given the admin role on first use.
 */
export async function requireAdmin(ctx: AdminContext, attempted: string): Promise<CheckedAdmin> {
  const { account, configured } = await loadActor(ctx);
  const hasRole = account?.roles.includes('admin') ?? false;
  if (!account || account.status !== 'active' || (!configured && !hasRole)) {
    const reason = !account
      ? 'no such account'
      : account.status !== 'active'
        ? `account ${account.status}`
        : 'not an admin';
    if (account) {
      await recordAudit(
        {
          actor: String(account._id),
          channel: ctx.actor.channel,
          action: 'admin.refused',
          target: { kind: 'operation', id: attempted },
          details: { attempted, reason },
        },
        { clock: ctx.clock },
      );
    }
    throw new DomainError('FORBIDDEN', 'Only an admin can do that.', {
      details: { reason: 'NOT_ADMIN', attempted },
    });
  }
  if (configured && !hasRole) {
    await recordAudit(
      {
        actor: String(account._id),
        channel: ctx.actor.channel,
        action: 'admin.bootstrapped',
        target: { kind: 'account', id: String(account._id) },
        details: { source: 'configuration' },
        key: `admin.bootstrapped:${String(account._id)}`,
      },
      { clock: ctx.clock },
    );
    await Account.updateOne({ _id: account._id }, { $addToSet: { roles: 'admin' } });
  }
  return { accountId: String(account._id), email: account.email ?? null, configured };
}

/** An audit entry of the actor's, about `target`. */
export function entry(
  ctx: AdminContext,
  action: string,
  target: { kind: string; id: string },
  details: Record<string, unknown> = {},
  key?: string,
): AuditInput {
  return {
    actor: ctx.actor.accountId,
    channel: ctx.actor.channel,
    action,
    target,
    details,
    ...(key === undefined ? {} : { key }),
  };
}

/**
 * Records `input`, then runs `act`; when `act` fails, records
 * `<action>.failed` with the error's code and message, and rethrows.
 */
export async function audited<T>(
  ctx: AdminContext,
  input: AuditInput,
  act: () => Promise<T>,
): Promise<T> {
  await recordAudit(input, { clock: ctx.clock });
  try {
    return await act();
  } catch (error) {
    await recordAudit(
      {
        ...input,
        action: `${input.action}.failed`,
        details: {
          ...input.details,
          error: isDomainError(error) ? error.code : 'INTERNAL',
          message: isDomainError(error) ? error.message : 'unexpected error',
        },
        ...(input.key === undefined ? {} : { key: `${input.key}:failed` }),
      },
      { clock: ctx.clock },
    ).catch(() => undefined);
    throw error;
  }
}

/** Records a read (a list or a report shown to the admin). */
export async function recordView(
  ctx: AdminContext,
  action: string,
  target: { kind: string; id: string },
  details: Record<string, unknown> = {},
): Promise<void> {
  await recordAudit(entry(ctx, action, target, details), { clock: ctx.clock });
}

/** A request id (one per admin command; a repeat is the same action): letters, digits, dashes. */
export function checkRequestId(requestId: string): string {
  if (!/^[A-Za-z0-9-]{1,64}$/.test(requestId)) {
    throw new DomainError('VALIDATION_FAILED', 'requestId: 1 to 64 letters, digits and dashes.', {
      details: { field: 'requestId' },
    });
  }
  return requestId;
}
