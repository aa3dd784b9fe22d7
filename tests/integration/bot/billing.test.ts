/**
 * The billing journey with real accounts, payments (Paystack emulator, saved
 * cards, webhooks) and the database: what a customer taps in Billing and what
 * then happened to their plan, card, wallet and invoices.
 */
import { describe, expect, it } from '@jest/globals';
import { getQuotaUsage } from '../../../core/quota.js';
import { getLiveSubscription, getCurrentSubscription } from '../../../core/subscriptions.js';
import { getWallet } from '../../../core/wallet.js';
import { formatMoney } from '../../../lib/money.js';
import { ChatState } from '../../../models/chat-state.js';
import { Payment } from '../../../models/payment.js';
import { Wallet } from '../../../models/wallet.js';
import type { Outbound } from '../../../bot/core/types.js';
import { useTestDatabase } from '../../support/database.js';
import { textOf, useBotHarness, type ChatUser } from '../../support/bot.js';

useTestDatabase();
const h = useBotHarness();
const GB = 1_000_000_000;

/** A signed-up customer who bought `planCode` through the link the bot sent (the card is saved). */
async function customerOn(planCode: string): Promise<ChatUser> {
  const user = await h.signedUp();
  await user.press('Plans');
  const answer = await user.press(`buy:${planCode}`);
  await payLink(answer);
  return user;
}

/** Pays the Paystack link in `answer` and waits until our side has settled it. */
async function payLink(answer: Outbound[]): Promise<void> {
  const link = answer.find((m): m is Extract<Outbound, { kind: 'link' }> => m.kind === 'link');
  if (!link) throw new Error(`no payment link: ${textOf(answer)}`);
  const payment = await Payment.findOne({ authorizationUrl: link.url }).lean().orFail();
  await h.payments.payAndSettle(payment.reference);
}

async function accountOf(user: ChatUser): Promise<string> {
  const state = await ChatState.findOne({ externalId: user.identity.externalId }).lean();
  if (!state?.accountId) throw new Error('no account in chat state');
  return String(state.accountId);
}

/** The action of the button labelled `label` on the last menu the user got. */
function actionOf(user: ChatUser, label: string): string {
  const menu = [...user.received].reverse().find((m) => 'menu' in m && m.menu);
  const items = menu && 'menu' in menu && menu.menu ? menu.menu.flat() : [];
  const found = items.find((i) => i.label.includes(label));
  if (!found) throw new Error(`no button "${label}": ${items.map((i) => i.label).join(' | ')}`);
  return found.action;
}

/** Taps a button again later (a double tap, or an old message's button). */
async function tapAgain(user: ChatUser, action: string): Promise<string> {
  const reply = await h.conversation.handle(user.identity, { kind: 'action', action });
  return textOf(reply.messages);
}

const naira = (amountMinor: number) => formatMoney({ amountMinor, currency: 'NGN' });

describe('the billing overview', () => {
  it('shows the plan, its status, and the renewal date and price', async () => {
    const user = await customerOn('starter');
    const sub = await getLiveSubscription(await accountOf(user));
    const overview = textOf(await user.command('billing'));
    expect(overview).toContain('Plan: Starter (active).');
    const periodEnd = sub?.periodEnd ?? new Date(0);
    const month = periodEnd.toLocaleString('en-GB', { month: 'short', timeZone: 'UTC' });
    expect(overview).toContain(
      `Renews on ${periodEnd.getUTCDate()} ${month} ${periodEnd.getUTCFullYear()} for ₦3,500.00`,
    );
    expect(overview).toContain('Wallet: ₦0.00.');
  });
});

describe('changing plan', () => {
  it('upgrades at once, charged to the saved card, after the customer confirms the quoted lines', async () => {
    const user = await customerOn('starter');
    const accountId = await accountOf(user);
    await user.command('billing');
    const targets = await user.press('Change plan');
    expect(textOf(targets)).toContain('You are on Starter. Move to which plan?');
    const quote = textOf(await user.press('Personal'));
    expect(quote).toMatch(/Tap Confirm within 1[45] minutes/);
    // Nothing moves before Confirm.
    expect((await getLiveSubscription(accountId))?.planCode).toBe('starter');
    const confirm = actionOf(user, 'Confirm');

    expect(textOf(await user.press('Confirm'))).toContain('Done: you are on Personal now.');
    expect((await getLiveSubscription(accountId))?.planCode).toBe('personal');
    const charged = await Payment.find({ accountId, purpose: 'plan_change' }).lean();
    expect(charged.map((p) => [p.status, p.reference.endsWith('-card')])).toEqual([['paid', true]]);

    // A second tap on the same Confirm answers the same and charges nothing more.
    expect(await tapAgain(user, confirm)).toContain('Done: you are on Personal now.');
    expect(await Payment.countDocuments({ accountId, purpose: 'plan_change' })).toBe(1);
  });

  it('sends a payment link when the saved card is declined, and changes the plan once it is paid', async () => {
    const user = await customerOn('starter');
    const accountId = await accountOf(user);
    await user.command('billing');
    await user.press('Change plan');
    await user.press('Personal');
    h.payments.emulator.nextChargeAuthorization('failed');
    const answer = await user.press('Confirm');
    const link = answer.find((m) => m.kind === 'link');
    expect(link).toMatchObject({ kind: 'link', label: expect.stringMatching(/^Pay ₦/) });
    expect(textOf(answer)).toContain('Your saved card could not be charged without you.');
    expect((await getLiveSubscription(accountId))?.planCode).toBe('starter');

    await payLink(answer);
    expect((await getLiveSubscription(accountId))?.planCode).toBe('personal');
  });

  it('schedules a downgrade for the end of the period, with nothing to pay now', async () => {
    const user = await customerOn('personal');
    const accountId = await accountOf(user);
    await user.command('billing');
    await user.press('Change plan');
    await user.press('Starter');
    const done = textOf(await user.press('Confirm'));
    expect(done).toContain('Done: your plan moves to Starter on');
    const sub = await getLiveSubscription(accountId);
    expect(sub).toMatchObject({ planCode: 'personal', scheduledPlanCode: 'starter' });
    expect(await Payment.countDocuments({ accountId, purpose: 'plan_change' })).toBe(0);
    expect(textOf(await user.command('billing'))).toMatch(
      /On .+ it moves to Starter, at ₦3,500\.00 a period\./,
    );
  });
});

describe('cancelling', () => {
  it('cancels at the end of the period after Confirm, and takes it back with Keep my plan', async () => {
    const user = await customerOn('starter');
    const accountId = await accountOf(user);
    await user.command('billing');
    const when = textOf(await user.press('Cancel plan'));
    expect(when).toContain('Cancel your plan at the end of the period');
    const quote = textOf(await user.press('At the end of the period'));
    expect(quote).toContain('Cancel starter at the end of this period?');
    expect(quote).toContain('Nothing is refunded.');
    expect((await getLiveSubscription(accountId))?.cancelAtPeriodEnd).toBe(false);

    expect(textOf(await user.press('Confirm'))).toContain('will not renew');
    expect(await getLiveSubscription(accountId)).toMatchObject({
      status: 'active',
      cancelAtPeriodEnd: true,
    });
    expect(textOf(await user.command('billing'))).toContain('Cancelled: it keeps working until');

    expect(textOf(await user.press('Keep my plan'))).toContain('Your plan continues: it renews on');
    expect((await getLiveSubscription(accountId))?.cancelAtPeriodEnd).toBe(false);
  });

  it('cancels now with the refund line, and the unused part lands in the wallet', async () => {
    const user = await customerOn('personal');
    const accountId = await accountOf(user);
    await user.command('billing');
    await user.press('Cancel plan');
    const quote = textOf(await user.press('billing:cancel:now'));
    expect(quote).toContain('Cancel personal now?');
    expect(quote).toContain('Your proxy access stops at once.');
    const refund = /(₦[\d,]+\.\d\d) goes back to your wallet \(₦15,000\.00 x the smaller of/.exec(
      quote,
    )?.[1];
    expect(refund).toBeDefined();

    const done = textOf(await user.press('Confirm'));
    expect(done).toContain('Done: your plan has ended.');
    const wallet = await getWallet(accountId);
    expect(naira(wallet.balanceMinor)).toBe(refund);
    expect(done).toContain(`${refund} went to your wallet (balance ${refund}).`);
    expect(await getLiveSubscription(accountId)).toBeNull();
    expect((await getCurrentSubscription(accountId))?.status).toBe('cancelled');
  });
});

describe('extra data', () => {
  it('sells the data pack on the saved card after Confirm and adds it to this period', async () => {
    // The pack goes to the window containing Paystack's paid_at, which the
    // emulator stamps with the system time; the harness clock starts up to a
    // minute ahead of it, so the plan would start "after" the pack was paid.
    h.payments.clock.set(new Date());
    const user = await customerOn('starter');
    const accountId = await accountOf(user);
    await user.command('billing');
    const offer = textOf(await user.press('Buy 5 GB extra data'));
    expect(offer).toContain('Extra data: 5 GB for ₦1,500.00');
    const confirm = actionOf(user, 'Confirm');
    expect(textOf(await user.press('Confirm'))).toContain(
      "Done: 5 GB were added to this period's data.",
    );
    expect(await getQuotaUsage(accountId, h.payments.clock.now())).toMatchObject({
      addedBytes: 5 * GB,
    });
    // The same Confirm tapped twice is one purchase.
    await tapAgain(user, confirm);
    expect(await Payment.countDocuments({ accountId, purpose: 'data_topup' })).toBe(1);
    expect((await getQuotaUsage(accountId, h.payments.clock.now()))?.addedBytes).toBe(5 * GB);
  });
});

describe('wallet and auto top-up', () => {
  it('shows the balance and latest movements, tops up, and turns auto top-up on and off', async () => {
    const user = await h.signedUp();
    const accountId = await accountOf(user);
    await user.command('billing');
    const empty = textOf(await user.press('Wallet'));
    expect(empty).toContain('Wallet balance: ₦0.00.');
    expect(empty).toContain('No movements yet.');
    expect(empty).toContain('Auto top-up: off.');

    await user.press('Top up');
    await payLink(await user.press('topup:500000'));
    await user.command('billing');
    const topped = textOf(await user.press('Wallet'));
    expect(topped).toContain('Wallet balance: ₦5,000.00.');
    expect(topped).toMatch(/• .+: \+₦5,000\.00, Wallet top-up/);

    await user.press('Auto top-up: turn on');
    expect(textOf(await user.press('₦1,000.00'))).toContain(
      'When the balance falls below ₦1,000.00, add:',
    );
    const ask = textOf(await user.press('₦5,000.00'));
    expect(ask).toContain('we charge your saved card ₦5,000.00');
    // Choosing is not agreeing: nothing is set before Turn it on.
    expect((await Wallet.findOne({ accountId }).lean())?.autoTopUp).toBeUndefined();
    expect(textOf(await user.press('Turn it on'))).toContain(
      'Auto top-up is on: below ₦1,000.00, we add ₦5,000.00',
    );
    expect((await Wallet.findOne({ accountId }).lean())?.autoTopUp).toEqual({
      thresholdMinor: 100_000,
      amountMinor: 500_000,
    });
    expect(textOf(await user.press('Wallet'))).toContain(
      'Auto top-up: on. When the balance falls below ₦1,000.00, your saved card is charged ₦5,000.00.',
    );

    await user.press('Auto top-up: change');
    expect(textOf(await user.press('Turn auto top-up off'))).toContain('Auto top-up is off.');
    expect((await Wallet.findOne({ accountId }).lean())?.autoTopUp).toBeUndefined();
  });
});

describe('invoices', () => {
  it('lists the latest invoices and sends the one tapped as a PDF', async () => {
    const user = await customerOn('starter');
    await user.command('billing');
    const list = await user.press('Invoices');
    expect(textOf(list)).toContain('Your latest invoices');
    const label = (list[0] && 'menu' in list[0] ? list[0].menu?.flat()[0]?.label : '') ?? '';
    expect(label).toMatch(/^ATL-\d{4}-\d{6} · .+ · ₦3,500\.00$/);
    const number = label.split(' ')[0] ?? '';

    const sent = await user.press(number);
    const pdf = sent.find((m) => m.kind === 'document');
    expect(pdf).toMatchObject({
      kind: 'document',
      filename: `${number}.pdf`,
      mimeType: 'application/pdf',
      caption: `Invoice ${number}`,
    });
    expect(pdf?.kind === 'document' && pdf.bytes.subarray(0, 4).toString('latin1')).toBe('%PDF');
  });
});

/**
 * Last, because they move the business clock forward for good: the Paystack
 * emulator stamps payments with the system time, and a data pack paid "before"
 * its plan started would go to the wallet instead of the period.
 */
describe('as time passes', () => {
  it("shows core's refusal for a quote confirmed after it expired", async () => {
    const user = await customerOn('starter');
    await user.command('billing');
    await user.press('Change plan');
    await user.press('Team');
    h.payments.clock.advance(16 * 60_000);
    expect(textOf(await user.press('Confirm'))).toContain(
      'That quote has expired; ask for a new one.',
    );
    expect((await getLiveSubscription(await accountOf(user)))?.planCode).toBe('starter');
  });

  it('shows the deposit held during the trial, then its refund once the trial has ended', async () => {
    const user = await h.signedUp();
    await payLink(await user.press('Start a trial'));
    const during = textOf(await user.command('billing'));
    expect(during).toContain('Plan: trial, until');
    expect(during).toContain(
      'Deposit: ₦2,000.00, held until the trial ends, then returned to your card',
    );

    h.payments.clock.advance(3 * 86_400_000 + 60_000);
    await h.payments.payments.finishDueTrials();
    const after = textOf(await user.command('billing'));
    expect(after).toContain("You don't have a plan running.");
    expect(after).toContain('Your trial has ended. Deposit: ₦2,000.00.');
    expect(after).toMatch(/• ₦2,000\.00 to your card: (on its way|returned)/);
  });
});
