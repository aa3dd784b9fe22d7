import { DomainError } from '../../lib/errors.js';

/**
 * Why an attempt was refused: the DomainError's `details.reason` when it has
 * one, else its code; 'accepted' when the attempt went through. Anything
 * other than a DomainError is a bug and is thrown.
 */
export async function reasonOf(attempt: Promise<unknown>): Promise<unknown> {
  try {
    await attempt;
  } catch (error) {
    if (error instanceof DomainError) return error.details?.reason ?? error.code;
    throw error;
  }
  return 'accepted';
}
