/**
 * Invitations to a team seat, for chat: the owner asks for a code (or a link
 * that carries it), passes it on, and whoever opens it joins the team with
 * their own account. core/team.ts does the seat itself (its limits, caps,
 * races); this file only hands out codes and redeems them once.
 *
 * - A code is 8 characters from an alphabet without look-alikes (no 0/O,
 *   1/I/L), shown as `XXXX-XXXX`: 31^8 (about 8.5 x 10^11) codes, valid for
 *   48 hours by default, so guessing one is hopeless; it is still only ever
 *   compared whole, by an indexed lookup.
 * - Redeeming takes the invite with one conditional update (unused, not
 *   revoked, not expired) and then adds the seat. If the seat cannot be added
 *   (the team is full, the person already has a plan), the invite is given
 *   back so it still works once that is sorted out.
 */
import { randomInt } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import { isDuplicateKeyError } from '../models/errors.js';
import { SeatInvite, type SeatInviteRecord } from '../models/seat-invite.js';
import { toAccountId, type AccountId } from './account-id.js';
import { addSeat, seatsLeft, type SeatCaps, type SeatView } from './team.js';

const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
const CODE_LENGTH = 8;
/** How long an invite works unless the caller says otherwise. */
export const DEFAULT_INVITE_TTL_MS = 48 * 3_600_000;

export interface SeatInviteView {
  code: string;
  ownerAccountId: string;
  capBytes: number | null;
  maxConnections: number | null;
  expiresAt: Date;
  /** Deep links that open the bots with the code filled in, when configured. */
  links: { telegram?: string; whatsapp?: string };
}

export interface InviteLinkOptions {
  telegramBotUsername?: string;
  whatsappNumber?: string;
}

/** A new invite from the owner of a team plan; refused unless a seat could be added now. */
export async function createSeatInvite(
  ownerAccountId: AccountId,
  caps: SeatCaps,
  options: { clock: Clock; ttlMs?: number; links?: InviteLinkOptions },
): Promise<SeatInviteView> {
  const owner = toAccountId(ownerAccountId);
  if ((await seatsLeft(owner)) === 0) {
    throw new DomainError(
      'CONFLICT',
      'Every seat of your team is taken. Remove a member to invite another.',
      {
        details: { reason: 'SEATS_FULL' },
      },
    );
  }
  const expiresAt = new Date(
    options.clock.now().getTime() + (options.ttlMs ?? DEFAULT_INVITE_TTL_MS),
  );
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const created = await SeatInvite.create({
        code: newCode(),
        ownerAccountId: owner,
        ...(caps.capBytes ? { capBytes: caps.capBytes } : {}),
        ...(caps.maxConnections ? { maxConnections: caps.maxConnections } : {}),
        expiresAt,
      });
      return toView(created.toObject(), options.links);
    } catch (error) {
      // A code already taken (1 in 10^11): draw again.
      if (!isDuplicateKeyError(error)) throw error;
    }
  }
  throw new Error('could not draw an unused invite code');
}

/** Joins the owner's team with an invite code (any case, with or without the dash). */
export async function joinTeamWithInvite(
  memberAccountId: AccountId,
  code: string,
  options: { clock: Clock },
): Promise<SeatView> {
  const member = toAccountId(memberAccountId);
  const normalised = normaliseCode(code);
  const now = options.clock.now();
  const taken = normalised
    ? await SeatInvite.findOneAndUpdate(
        {
          code: normalised,
          usedBy: { $exists: false },
          revokedAt: { $exists: false },
          expiresAt: { $gt: now },
        },
        { $set: { usedBy: member, usedAt: now } },
        { returnDocument: 'after' },
      ).lean<SeatInviteRecord>()
    : null;
  if (!taken) throw await whyNot(normalised, now);
  try {
    return await addSeat(
      taken.ownerAccountId,
      member,
      { capBytes: taken.capBytes ?? null, maxConnections: taken.maxConnections ?? null },
      options,
    );
  } catch (error) {
    // Not joined: the invite works again for when the reason is gone.
    await SeatInvite.updateOne(
      { _id: taken._id, usedBy: member },
      { $unset: { usedBy: 1, usedAt: 1 } },
    );
    throw error;
  }
}

/** Stops an unused invite of this owner from working. */
export async function revokeSeatInvite(
  ownerAccountId: AccountId,
  code: string,
  options: { clock: Clock },
): Promise<void> {
  const result = await SeatInvite.updateOne(
    {
      code: normaliseCode(code) ?? '',
      ownerAccountId: toAccountId(ownerAccountId),
      usedBy: { $exists: false },
      revokedAt: { $exists: false },
    },
    { $set: { revokedAt: options.clock.now() } },
  );
  if (result.matchedCount === 0) {
    throw new DomainError('NOT_FOUND', 'No unused invite of yours has that code.');
  }
}

/** The owner's invites still waiting to be used. */
export async function listOpenSeatInvites(
  ownerAccountId: AccountId,
  options: { clock: Clock; links?: InviteLinkOptions },
): Promise<SeatInviteView[]> {
  const open = await SeatInvite.find({
    ownerAccountId: toAccountId(ownerAccountId),
    usedBy: { $exists: false },
    revokedAt: { $exists: false },
    expiresAt: { $gt: options.clock.now() },
  })
    .sort({ createdAt: -1 })
    .lean<SeatInviteRecord[]>();
  return open.map((invite) => toView(invite, options.links));
}

async function whyNot(code: string | null, now: Date): Promise<DomainError> {
  const invite = code ? await SeatInvite.findOne({ code }).lean<SeatInviteRecord>() : null;
  if (!invite) {
    return new DomainError(
      'NOT_FOUND',
      'That invite code is not valid. Check it with the team owner.',
      {
        details: { reason: 'UNKNOWN_CODE' },
      },
    );
  }
  const reason = invite.usedBy
    ? 'USED'
    : invite.revokedAt
      ? 'REVOKED'
      : invite.expiresAt <= now
        ? 'EXPIRED'
        : 'UNAVAILABLE';
  const message = {
    USED: 'That invite has already been used. Ask the team owner for a new one.',
    REVOKED: 'The team owner withdrew that invite.',
    EXPIRED: 'That invite has expired. Ask the team owner for a new one.',
    UNAVAILABLE: 'That invite cannot be used right now; try again.',
  }[reason];
  return new DomainError('CONFLICT', message, { details: { reason } });
}

function newCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return code;
}

/** `abcd-efgh`, `ABCDEFGH` and ` abcd efgh ` are the same code; anything else is none. */
function normaliseCode(input: string): string | null {
  const code = input.toUpperCase().replace(/[\s-]/g, '');
  if (code.length !== CODE_LENGTH) return null;
  for (const char of code) if (!ALPHABET.includes(char)) return null;
  return code;
}

function display(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

function toView(invite: SeatInviteRecord, links: InviteLinkOptions = {}): SeatInviteView {
  const shown = display(invite.code);
  return {
    code: shown,
    ownerAccountId: String(invite.ownerAccountId),
    capBytes: invite.capBytes ?? null,
    maxConnections: invite.maxConnections ?? null,
    expiresAt: invite.expiresAt,
    links: {
      ...(links.telegramBotUsername
        ? { telegram: `https://t.me/${links.telegramBotUsername}?start=join_${invite.code}` }
        : {}),
      ...(links.whatsappNumber
        ? {
            whatsapp: `https://wa.me/${links.whatsappNumber.replace(/\D/g, '')}?text=${encodeURIComponent(`JOIN ${shown}`)}`,
          }
        : {}),
    },
  };
}
