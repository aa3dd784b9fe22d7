/**
 * Chat state in MongoDB (models/chat-state.ts): loaded at the start of a
 * turn, written back at its end with a version check, so a restart or a
 * second instance resumes a half-finished conversation where it stood, and
 * two instances answering the same chat at once cannot silently overwrite
 * each other (the later write loses and is told so).
 */
import { Types } from 'mongoose';
import { ChatState } from '../../models/chat-state.js';
import { isDuplicateKeyError } from '../../models/errors.js';
import type { ChatIdentity, MenuItem } from './types.js';

/** Conversation state is forgotten this long after the last message. */
export const CHAT_STATE_TTL_MS = 30 * 24 * 3_600_000;

export interface TurnState {
  id: Types.ObjectId | null;
  version: number;
  /** The step waiting for the customer's next text, or null. */
  step: string | null;
  data: Record<string, unknown>;
  menu: MenuItem[];
  language: string;
  /** The account the stored state names (null when none yet). */
  accountChecked: string | null;
  /** When the stored state expires; a write pushes it out again. */
  expiresAt: Date | null;
}

interface StoredState {
  _id: Types.ObjectId;
  version: number;
  step?: string | null;
  data?: Record<string, unknown> | null;
  menu?: MenuItem[];
  language?: string;
  accountId?: Types.ObjectId | null;
  expiresAt?: Date;
}

export async function loadChatState(identity: ChatIdentity): Promise<TurnState> {
  const stored = await ChatState.findOne({
    channel: identity.channel,
    externalId: identity.externalId,
  }).lean<StoredState>();
  if (!stored) {
    return {
      id: null,
      version: 0,
      step: null,
      data: {},
      menu: [],
      language: 'en',
      accountChecked: null,
      expiresAt: null,
    };
  }
  return {
    id: stored._id,
    version: stored.version,
    step: stored.step ?? null,
    data: stored.data ?? {},
    menu: (stored.menu ?? []).map(({ label, action }) => ({ label, action })),
    language: stored.language ?? 'en',
    accountChecked: stored.accountId ? String(stored.accountId) : null,
    expiresAt: stored.expiresAt ?? null,
  };
}

/**
 * Writes the turn's state. False when another instance wrote this chat's
 * state since it was loaded (the other turn's state stands).
 */
export async function saveChatState(
  identity: ChatIdentity,
  accountId: string | null,
  state: TurnState,
  now: Date,
): Promise<boolean> {
  const fields = {
    ...(accountId ? { accountId: new Types.ObjectId(accountId) } : {}),
    step: state.step,
    data: state.data,
    menu: state.menu,
    language: state.language,
    expiresAt: new Date(now.getTime() + CHAT_STATE_TTL_MS),
  };
  if (state.id === null) {
    try {
      await ChatState.create({
        channel: identity.channel,
        externalId: identity.externalId,
        version: 1,
        ...fields,
      });
      return true;
    } catch (error) {
      if (isDuplicateKeyError(error)) return false;
      throw error;
    }
  }
  const written = await ChatState.updateOne(
    { _id: state.id, version: state.version },
    { $set: fields, $inc: { version: 1 } },
  );
  return written.modifiedCount === 1;
}
