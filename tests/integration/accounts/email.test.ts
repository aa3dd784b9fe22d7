/**
 * Email verification (core/accounts): a 6-digit code mailed through the real
 * mailer to a local SMTP server, entered back; wrong codes, lockout, expiry,
 * resend limits, addresses taken by another account, and changing email.
 */
import { describe, expect, it } from '@jest/globals';
import {
  accountForIdentity,
  confirmEmailCode,
  getAccountView,
  requestEmailCode,
} from '../../../core/accounts/index.js';
import { DomainError } from '../../../lib/errors.js';
import { VerificationCode } from '../../../models/verification-code.js';
import { useTestDatabase } from '../../support/database.js';
import { reasonOf } from '../../support/refusals.js';
import { newAddress, telegramUser, useAccountsHarness } from './harness.js';

useTestDatabase();
const h = useAccountsHarness();

async function newAccount(): Promise<string> {
  return (await accountForIdentity(telegramUser(), { clock: h.clock })).account.id;
}

/** The DomainError an attempt failed with (the test fails if it succeeded). */
async function refusal(attempt: Promise<unknown>): Promise<DomainError> {
  try {
    await attempt;
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a refusal, but it went through');
}

/** A 6-digit code that is not `code`. */
function wrong(code: string): string {
  return String((Number(code) + 1) % 1_000_000).padStart(6, '0');
}

describe('signing up with an email', () => {
  it('mails a 6-digit code and sets the address once the code comes back', async () => {
    const accountId = await newAccount();
    const address = newAddress('ada');
    h.clock.set('2027-03-02T10:00:00.000Z');
    const sent = await requestEmailCode(h.ctx, accountId, `  ${address.toUpperCase()} `);
    expect(sent).toEqual({
      sentTo: address,
      expiresAt: new Date('2027-03-02T10:15:00.000Z'),
    });

    const mail = await h.latestMailTo(address);
    const code = await h.codeSentTo(address);
    expect(code).toMatch(/^\d{6}$/);
    expect(mail.from).toBe('Atlantic <no-reply@atlantic.test>');
    expect(mail.envelopeTo).toEqual([address]);
    expect(mail.subject).toBe(`Your Atlantic code: ${code}`);
    expect(mail.text).toBe(
      [
        `Your Atlantic verification code is ${code}.`,
        '',
        `Enter it where you asked for it to confirm ${address} as your email address.`,
        'It works for 15 minutes, until 10:15 UTC on 2 March 2027.',
        '',
        'If you did not ask for this code, ignore this mail: nothing changes without it.',
      ].join('\n'),
    );
    // Not yet verified: nothing changes until the code comes back.
    expect((await getAccountView(accountId)).email).toBeNull();
    // The code is not stored, only a salted hash of it.
    const stored = await VerificationCode.findOne({ accountId, purpose: 'email' }).lean();
    expect(JSON.stringify(stored)).not.toContain(code);

    h.clock.advanceBy({ minutes: 3 });
    const view = await confirmEmailCode(h.ctx, accountId, ` ${code.slice(0, 3)} ${code.slice(3)} `);
    expect(view).toMatchObject({ id: accountId, email: address, emailVerified: true });
    expect(await getAccountView(accountId)).toEqual(view);
    // A code works once.
    expect(await reasonOf(confirmEmailCode(h.ctx, accountId, code))).toBe('NO_CODE');
  });

  it('refuses an address that is not one', async () => {
    const accountId = await newAccount();
    const mailsBefore = h.smtp.messages.length;
    for (const bad of ['', 'ada', 'ada@', '@example.com', 'ada@example', 'a da@example.com']) {
      const error = await refusal(requestEmailCode(h.ctx, accountId, bad));
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.details).toMatchObject({ field: 'email' });
    }
    expect(h.smtp.messages).toHaveLength(mailsBefore);
    // Refusals do not use up the resend allowance.
    await requestEmailCode(h.ctx, accountId, newAddress('ada'));
  });

  it('counts wrong codes down and kills the code after the fifth', async () => {
    const accountId = await newAccount();
    const address = newAddress('bola');
    await requestEmailCode(h.ctx, accountId, address);
    const code = await h.codeSentTo(address);

    const left: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const error = await refusal(confirmEmailCode(h.ctx, accountId, wrong(code)));
      expect(error.code).toBe('VALIDATION_FAILED');
      left.push(error.details?.attemptsLeft);
    }
    expect(left).toEqual([4, 3, 2, 1]);
    const fifth = await refusal(confirmEmailCode(h.ctx, accountId, 'abc'));
    expect(fifth.details).toMatchObject({ reason: 'TOO_MANY_ATTEMPTS', attemptsLeft: 0 });

    // Dead: even the right code is refused now, and the email stays unset.
    const late = await refusal(confirmEmailCode(h.ctx, accountId, code));
    expect(late.code).toBe('VALIDATION_FAILED');
    expect(late.details).toMatchObject({ reason: 'TOO_MANY_ATTEMPTS', attemptsLeft: 0 });
    expect((await getAccountView(accountId)).email).toBeNull();

    // A new code works.
    h.clock.advanceBy({ minutes: 1 });
    await requestEmailCode(h.ctx, accountId, address);
    const fresh = await h.codeSentTo(address);
    expect((await confirmEmailCode(h.ctx, accountId, fresh)).email).toBe(address);
  });

  it('gives parallel guesses no more than five tries between them', async () => {
    const accountId = await newAccount();
    const address = newAddress('chidi');
    await requestEmailCode(h.ctx, accountId, address);
    const code = await h.codeSentTo(address);
    const errors = await Promise.all(
      Array.from({ length: 12 }, () => refusal(confirmEmailCode(h.ctx, accountId, wrong(code)))),
    );
    const reasons = errors.map((error) => error.details?.reason);
    expect(reasons.filter((reason) => reason === 'WRONG_CODE')).toHaveLength(4);
    expect(reasons.filter((reason) => reason === 'TOO_MANY_ATTEMPTS')).toHaveLength(8);
    expect(await reasonOf(confirmEmailCode(h.ctx, accountId, code))).toBe('TOO_MANY_ATTEMPTS');
  });

  it('refuses a code after 15 minutes', async () => {
    const accountId = await newAccount();
    const address = newAddress('dayo');
    await requestEmailCode(h.ctx, accountId, address);
    const code = await h.codeSentTo(address);

    h.clock.advanceBy({ minutes: 15 });
    const error = await refusal(confirmEmailCode(h.ctx, accountId, code));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.details).toMatchObject({ reason: 'CODE_EXPIRED' });
    expect((await getAccountView(accountId)).email).toBeNull();
  });

  it('sends at most one code a minute and five an hour, and says when to come back', async () => {
    const accountId = await newAccount();
    const address = newAddress('efe');
    await requestEmailCode(h.ctx, accountId, address);

    h.clock.advanceBy({ seconds: 20 });
    const tooSoon = await refusal(requestEmailCode(h.ctx, accountId, address));
    expect(tooSoon.code).toBe('RATE_LIMITED');
    expect(tooSoon.details).toEqual({ retryAfterSeconds: 40 });
    // Another address does not get round it.
    expect(await reasonOf(requestEmailCode(h.ctx, accountId, newAddress('efe')))).toBe(
      'RATE_LIMITED',
    );

    for (let sent = 2; sent <= 5; sent++) {
      h.clock.advanceBy({ seconds: 60 });
      await requestEmailCode(h.ctx, accountId, address);
    }
    // Five codes sent in 4 min 20 s: the sixth waits for the first to be an hour old.
    h.clock.advanceBy({ minutes: 10 });
    const sixth = await refusal(requestEmailCode(h.ctx, accountId, address));
    expect(sixth.code).toBe('RATE_LIMITED');
    expect(sixth.details).toEqual({ retryAfterSeconds: 3600 - (20 + 4 * 60 + 10 * 60) });
    expect(h.smtp.messages.filter((mail) => mail.to.includes(address))).toHaveLength(5);

    h.clock.advance(Number(sixth.details?.retryAfterSeconds) * 1000);
    await requestEmailCode(h.ctx, accountId, address);
    // Only the latest code works.
    const latest = await h.codeSentTo(address);
    expect((await confirmEmailCode(h.ctx, accountId, latest)).email).toBe(address);
  });

  it('only lets the latest code in when several were sent', async () => {
    const accountId = await newAccount();
    const address = newAddress('femi');
    await requestEmailCode(h.ctx, accountId, address);
    const first = await h.codeSentTo(address);
    h.clock.advanceBy({ minutes: 1 });
    await requestEmailCode(h.ctx, accountId, address);
    const second = await h.codeSentTo(address);
    if (first !== second) {
      expect(await reasonOf(confirmEmailCode(h.ctx, accountId, first))).toBe('WRONG_CODE');
    }
    expect((await confirmEmailCode(h.ctx, accountId, second)).email).toBe(address);
  });

  it('refuses an address another account has verified, before and after sending', async () => {
    const owner = await newAccount();
    const address = newAddress('gozie');
    await requestEmailCode(h.ctx, owner, address);
    await confirmEmailCode(h.ctx, owner, await h.codeSentTo(address));
    const mailsBefore = h.smtp.messages.length;

    const other = await newAccount();
    const error = await refusal(requestEmailCode(h.ctx, other, address.toUpperCase()));
    expect(error.code).toBe('CONFLICT');
    expect(error.details).toMatchObject({ reason: 'EMAIL_TAKEN' });
    expect(h.smtp.messages).toHaveLength(mailsBefore);

    // Two accounts racing for one address: the first to confirm gets it.
    const shared = newAddress('hauwa');
    const first = await newAccount();
    const second = await newAccount();
    await requestEmailCode(h.ctx, first, shared);
    const firstCode = await h.codeSentTo(shared);
    await requestEmailCode(h.ctx, second, shared);
    const secondCode = await h.codeSentTo(shared);
    await confirmEmailCode(h.ctx, second, secondCode);
    const late = await refusal(confirmEmailCode(h.ctx, first, firstCode));
    expect(late.code).toBe('CONFLICT');
    expect(late.details).toMatchObject({ reason: 'EMAIL_TAKEN' });
    expect((await getAccountView(first)).email).toBeNull();
  });

  it('keeps the old email until the new one is verified, then tells the old address', async () => {
    const accountId = await newAccount();
    const oldAddress = newAddress('ike');
    await requestEmailCode(h.ctx, accountId, oldAddress);
    await confirmEmailCode(h.ctx, accountId, await h.codeSentTo(oldAddress));

    h.clock.advanceBy({ minutes: 5 });
    const newAddr = newAddress('ike.new');
    await requestEmailCode(h.ctx, accountId, newAddr);
    const code = await h.codeSentTo(newAddr);
    expect(await getAccountView(accountId)).toMatchObject({
      email: oldAddress,
      emailVerified: true,
    });
    // A wrong code changes nothing either.
    await refusal(confirmEmailCode(h.ctx, accountId, wrong(code)));
    expect((await getAccountView(accountId)).email).toBe(oldAddress);
    // Nor does letting the code expire.
    h.clock.advanceBy({ minutes: 16 });
    expect(await reasonOf(confirmEmailCode(h.ctx, accountId, code))).toBe('CODE_EXPIRED');
    expect((await getAccountView(accountId)).email).toBe(oldAddress);

    await requestEmailCode(h.ctx, accountId, newAddr);
    const view = await confirmEmailCode(h.ctx, accountId, await h.codeSentTo(newAddr));
    expect(view).toMatchObject({ email: newAddr, emailVerified: true });

    const notice = await h.latestMailTo(oldAddress);
    expect(notice.subject).toBe('Your Atlantic email address was changed');
    expect(notice.text).toContain(`The email address of your Atlantic account is now ${newAddr}.`);
    // The old address is free for someone else now.
    const other = await newAccount();
    await requestEmailCode(h.ctx, other, oldAddress);
  });

  it('refuses to confirm when no code was asked for', async () => {
    const accountId = await newAccount();
    const error = await refusal(confirmEmailCode(h.ctx, accountId, '123456'));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.details).toMatchObject({ reason: 'NO_CODE' });
  });
});
