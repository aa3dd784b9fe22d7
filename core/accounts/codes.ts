/**
 * One-time codes: how they are drawn, written for people, and stored.
 *
 * Stored as scrypt(code, per-code salt), never as the code. These codes are
 * short (a 6-digit email code has 10^6 values, an 8-character link code about
 * 8.5 x 10^11), so a fast hash of one could be reversed in moments by anyone
 * who reads the database (a backup, an admin tool); scrypt at about 25 ms a
 * try makes that take hours to days, well past the code's 10 to 15 minutes.
 *
 * A link code is redeemed without knowing whose it is, and a salted hash
 * cannot be looked up. So its first LOOKUP_LENGTH characters are stored in the
 * clear to find the few candidate documents, and each candidate's hash is
 * checked. The other 5 characters (31^5, about 2.9 x 10^7 values) still cost
 * a reader of the database days of scrypt per code.
 */
import { randomBytes, randomInt, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: string,
  keylen: number,
  options: { N: number; r: number; p: number },
) => Promise<Buffer>;

/** scrypt cost: 2^14 rounds, 16 MiB, about 25 ms per hash on one core. */
const SCRYPT = { N: 16_384, r: 8, p: 1 };

/** Letters and digits without look-alikes (no 0/O, 1/I/L), as in team invites. */
export const LINK_CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const LINK_CODE_LENGTH = 8;
/** Characters of a link code kept in the clear to find it (see the module comment). */
export const LINK_CODE_LOOKUP_LENGTH = 3;

export interface HashedCode {
  codeHash: string;
  salt: string;
}

export async function hashCode(code: string): Promise<HashedCode> {
  const salt = randomBytes(16).toString('hex');
  return { codeHash: await hashWithSalt(code, salt), salt };
}

/** True when `code` is the one hashed into `stored`; compared in constant time. */
export async function codeMatches(code: string, stored: HashedCode): Promise<boolean> {
  const actual = Buffer.from(await hashWithSalt(code, stored.salt), 'hex');
  const expected = Buffer.from(stored.codeHash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

async function hashWithSalt(code: string, salt: string): Promise<string> {
  return (await scryptAsync(code, salt, 32, SCRYPT)).toString('hex');
}

export function newLinkCode(): string {
  let code = '';
  for (let i = 0; i < LINK_CODE_LENGTH; i++) {
    code += LINK_CODE_ALPHABET[randomInt(LINK_CODE_ALPHABET.length)];
  }
  return code;
}

/** `abcd-efgh`, `ABCDEFGH` and ` abcd efgh ` are the same code; anything else is none. */
export function normaliseLinkCode(input: string): string | null {
  const code = input.toUpperCase().replace(/[\s-]/g, '');
  if (code.length !== LINK_CODE_LENGTH) return null;
  for (const char of code) if (!LINK_CODE_ALPHABET.includes(char)) return null;
  return code;
}

/** `ABCD-EFGH`: easier to read out and type. */
export function displayLinkCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** Six digits, spaces and dashes ignored (`123 456`); anything else is none. */
export function normaliseEmailCode(input: string): string | null {
  const code = input.replace(/[\s-]/g, '');
  return /^\d{6}$/.test(code) ? code : null;
}
