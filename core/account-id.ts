/**
 * An account `_id` as the core functions take it (an ObjectId or its hex
 * string), checked once: anything else is a VALIDATION_FAILED the caller can
 * show, never a cast error from deep inside a query.
 */
import { Types } from 'mongoose';
import { DomainError } from '../lib/errors.js';

export type AccountId = string | Types.ObjectId;

export function toAccountId(accountId: AccountId): Types.ObjectId {
  if (accountId instanceof Types.ObjectId) return accountId;
  if (!Types.ObjectId.isValid(accountId)) {
    throw new DomainError('VALIDATION_FAILED', 'That is not an account id.', {
      details: { field: 'accountId', accountId },
    });
  }
  return new Types.ObjectId(accountId);
}
