/**
 * Billing: where the customer's plan stands and everything that moves money
 * after the first purchase, each money-moving step shown as core's quote and
 * carried out only on an explicit Confirm.
 *
 *   billing              -> plan, status, renewal date and price (or the PAYG
 *                           rate), trial deposit, wallet; the buttons that apply
 *   billing:change       -> target plans -> core's quote lines -> Confirm ->
 *                           applied / scheduled / payment link / processing /
 *                           bought like a new plan (buy:<code>)
 *   billing:cancel       -> at period end or now -> quote -> Confirm; undo
 *   billing:data         -> the extra data pack -> Confirm -> card or link
 *   billing:wallet       -> balance, latest ledger entries, top up, auto top-up
 *   billing:invoices     -> the latest five, each a button sending its PDF
 *
 * Quotes live in core (15 minutes, claimed once); the Confirm button carries
 * the quote id, so a late or repeated tap gets core's own answer (expired,
 * stale, or the outcome it already had).
 */
import { randomBytes } from 'node:crypto';
import { formatMoney, type Currency } from '../../../lib/money.js';
import { getAccountView } from '../../../core/accounts/index.js';
import { getInvoice, getInvoiceByPaymentReference, listInvoices } from '../../../core/invoices.js';
import { renderInvoicePdf } from '../../../core/invoice-pdf.js';
import { setAutoTopUp } from '../../../core/payments/index.js';
import { comparePlans, getPlan, listPlans, priceForRenewal } from '../../../core/plans.js';
import {
  getCurrentSubscription,
  getLiveSubscription,
  undoCancel,
} from '../../../core/subscriptions.js';
import { getSeat } from '../../../core/team.js';
import { getWallet, listLedger } from '../../../core/wallet.js';
import { Wallet } from '../../../models/wallet.js';
import type { SubscriptionRecord } from '../../../models/subscription.js';
import type { Journey, Turn } from '../conversation.js';
import type { Menu, MenuItem } from '../types.js';

/** Auto top-up choices, in minor units of the wallet's currency. */
const AUTO_THRESHOLDS_MINOR = [50_000, 100_000, 200_000];
const AUTO_AMOUNTS_MINOR = [100_000, 500_000, 1_000_000];
const LEDGER_LINES = 5;
const INVOICE_BUTTONS = 5;

/** "26 Nov 2026": dates in chat are UTC days. */
export function day(at: Date): string {
  const month = at.toLocaleString('en-GB', { month: 'short', timeZone: 'UTC' });
  return `${at.getUTCDate()} ${month} ${at.getUTCFullYear()}`;
}

const money = (amountMinor: number, currency: Currency) => formatMoney({ amountMinor, currency });

const item = (label: string, action: string): MenuItem => ({ label, action });

function backMenu(turn: Turn): Menu {
  return [[item(turn.t.billing.backToBilling, 'billing')], ...turn.t.backToMenu];
}

// --- the overview ----------------------------------------------------------------

async function overview(turn: Turn): Promise<void> {
  const t = turn.t.billing;
  const accountId = turn.account.id;
  const [live, seat, wallet, settings] = await Promise.all([
    getLiveSubscription(accountId),
    getSeat(accountId),
    getWallet(accountId),
    turn.deps.settings.get(),
  ]);
  const lines: string[] = [];
  const menu: Menu = [];
  const common = [
    item(t.walletButton, 'billing:wallet'),
    item(t.invoicesButton, 'billing:invoices'),
  ];

  if (!live) {
    if (seat) {
      const owner = await getAccountView(seat.ownerAccountId);
      lines.push(t.teamMember(owner.email ?? 'the owner'));
      menu.push([item(t.teamButton, 'team')]);
    } else {
      lines.push(t.noPlan);
      const latest = await getCurrentSubscription(accountId);
      if (latest?.planKind === 'trial') lines.push(...(await depositStatus(turn, latest)));
      menu.push([item(t.plansButton, 'plans')]);
    }
  } else {
    const plan = await getPlan(live.planCode);
    switch (live.status) {
      case 'pending_payment':
        lines.push(t.pending(plan.name));
        menu.push([item(t.plansButton, 'plans')]);
        break;
      case 'trialing':
        lines.push(...(await depositStatus(turn, live)));
        menu.push([item(t.plansButton, 'plans')]);
        break;
      case 'past_due':
        lines.push(t.pastDue(plan.name, live.graceEndsAt ? day(live.graceEndsAt) : '-'));
        menu.push([item(t.cancelPlanButton, 'billing:cancel')]);
        break;
      default:
        if (live.planKind === 'payg') {
          const rate = comparePlans([plan], { currency: live.currency })[0]?.labels.price ?? '';
          lines.push(t.payg(rate));
          menu.push([item(t.changePlanButton, 'billing:change')]);
          menu.push([item(t.stopPaygButton, 'billing:cancel')]);
          break;
        }
        lines.push(t.active(plan.name));
        lines.push(await renewalLine(turn, live));
        menu.push(
          live.cancelAtPeriodEnd
            ? [item(t.undoCancelButton, 'billing:undo')]
            : [
                item(t.changePlanButton, 'billing:change'),
                item(t.cancelPlanButton, 'billing:cancel'),
              ],
        );
        if (plan.quota && settings.dataTopUpPriceMinor > 0) {
          menu.push([item(t.extraDataButton(settings.dataTopUpGb), 'billing:data')]);
        }
        if ((plan.seats ?? 1) > 1) menu.push([item(t.teamButton, 'team')]);
    }
  }
  lines.push(t.walletLine(money(wallet.balanceMinor, wallet.currency)));
  menu.push(common, ...turn.t.backToMenu);
  turn.text(lines.join('\n'), menu);
}

async function renewalLine(turn: Turn, live: SubscriptionRecord): Promise<string> {
  const t = turn.t.billing;
  const periodEnd = live.periodEnd ? day(live.periodEnd) : '-';
  if (live.cancelAtPeriodEnd) return t.endsAtPeriodEnd(periodEnd);
  const next = live.scheduledPlanCode ?? live.planCode;
  const price = await priceForRenewal({ planCode: next, currency: live.currency });
  const amount = money(price.priceMinor, price.currency);
  if (live.scheduledPlanCode) {
    return t.scheduledChange((await getPlan(live.scheduledPlanCode)).name, periodEnd, amount);
  }
  return t.renews(periodEnd, amount);
}

/** The trial and where its deposit is: held while it runs, then each refund's state. */
async function depositStatus(turn: Turn, trial: SubscriptionRecord): Promise<string[]> {
  const t = turn.t.billing;
  const reference = trial.activatedByPaymentRef;
  const [invoice, settings] = await Promise.all([
    reference ? getInvoiceByPaymentReference(reference) : null,
    turn.deps.settings.get(),
  ]);
  const amount = money(
    invoice?.totalMinor ?? settings.trialDepositMinor,
    invoice?.currency ?? settings.currency,
  );
  if (trial.status === 'trialing') {
    return [
      t.trialRunning(trial.trialEndsAt ? day(trial.trialEndsAt) : '-'),
      t.depositHeld(amount, t.depositBackTo(settings.trialDepositRefund === 'wallet')),
    ];
  }
  const refunds = reference ? await turn.deps.payments.listRefunds(reference) : [];
  if (refunds.length === 0) return [t.depositEnded(amount), t.depositNotYet];
  return [
    t.depositEnded(amount),
    ...refunds.map((refund) =>
      t.depositRefund({
        amount: money(refund.amountMinor, refund.currency),
        to: t.depositRefundTo(refund.method),
        state: t.depositRefundState(
          refund.status,
          refund.processedAt ? day(refund.processedAt) : '',
        ),
      }),
    ),
  ];
}

// --- changing plan -----------------------------------------------------------------

async function chooseTarget(turn: Turn): Promise<void> {
  const t = turn.t.billing;
  const live = await getLiveSubscription(turn.account.id);
  if (!live) return overview(turn);
  const current = await getPlan(live.planCode);
  const rows = comparePlans(await listPlans({ onSaleOnly: true }), { currency: live.currency });
  const targets = rows.filter(
    (row) => (row.kind === 'recurring' || row.kind === 'payg') && row.code !== live.planCode,
  );
  if (targets.length === 0) {
    turn.text(t.noTargets, backMenu(turn));
    return;
  }
  turn.text(t.chooseTarget(current.name), [
    ...targets.map((row) => [
      item(t.targetLabel(row.name, row.labels.price), `billing:change:${row.code}`),
    ]),
    ...backMenu(turn),
  ]);
}

async function quoteChange(turn: Turn, toPlanCode: string): Promise<void> {
  const t = turn.t.billing;
  const offer = await turn.deps.payments.quotePlanChange({
    accountId: turn.account.id,
    toPlanCode,
  });
  turn.text([...offer.lines, '', t.quoteFooter(minutesUntil(turn, offer.expiresAt))].join('\n'), [
    [item(t.confirmButton, `billing:changeok:${offer.quoteId}`), item(t.notNowButton, 'billing')],
  ]);
}

async function confirmChange(turn: Turn, quoteId: string): Promise<void> {
  const t = turn.t.billing;
  const outcome = await turn.deps.payments.confirmPlanChange({
    accountId: turn.account.id,
    quoteId,
  });
  switch (outcome.state) {
    case 'applied': {
      const [plan, wallet] = await Promise.all([
        getPlan(outcome.toPlanCode),
        getWallet(turn.account.id),
      ]);
      const credit =
        outcome.walletCreditMinor > 0 ? money(outcome.walletCreditMinor, wallet.currency) : '';
      turn.text(t.changeApplied(plan.name, credit), backMenu(turn));
      return;
    }
    case 'scheduled': {
      const plan = await getPlan(outcome.toPlanCode);
      turn.text(t.changeScheduled(plan.name, day(outcome.at)), backMenu(turn));
      return;
    }
    case 'payment_link': {
      const settings = await turn.deps.settings.get();
      const amount = money(outcome.amountMinor, settings.currency);
      turn.say({
        kind: 'link',
        text: t.changePayLink(amount),
        url: outcome.authorizationUrl,
        label: turn.t.payButton(amount),
        menu: backMenu(turn),
      });
      return;
    }
    case 'processing':
      turn.text(t.changeProcessing, backMenu(turn));
      return;
    case 'use_checkout': {
      const plan = await getPlan(outcome.toPlanCode);
      turn.text(t.changeUseCheckout(plan.name));
      await turn.go(`buy:${outcome.toPlanCode}`);
      return;
    }
  }
}

// --- cancelling ----------------------------------------------------------------------

async function chooseCancel(turn: Turn): Promise<void> {
  const t = turn.t.billing;
  const live = await getLiveSubscription(turn.account.id);
  if (!live) return overview(turn);
  // Only a paid period can run out; anything else stops now (core says so in the quote).
  if (live.planKind !== 'recurring' || live.status !== 'active' || !live.periodEnd) {
    return quoteCancel(turn, 'now');
  }
  const end = day(live.periodEnd);
  turn.text(t.cancelWhen(end), [
    [item(t.cancelAtEndButton(end), 'billing:cancel:end')],
    [item(t.cancelNowButton, 'billing:cancel:now')],
    ...backMenu(turn),
  ]);
}

async function quoteCancel(turn: Turn, when: 'now' | 'period_end'): Promise<void> {
  const t = turn.t.billing;
  const quote = await turn.deps.payments.quoteCancellation({ accountId: turn.account.id, when });
  turn.text([...quote.lines, '', t.quoteFooter(minutesUntil(turn, quote.expiresAt))].join('\n'), [
    [item(t.confirmButton, `billing:cancelok:${quote.quoteId}`), item(t.notNowButton, 'billing')],
  ]);
}

async function confirmCancel(turn: Turn, quoteId: string): Promise<void> {
  const t = turn.t.billing;
  const outcome = await turn.deps.payments.confirmCancellation({
    accountId: turn.account.id,
    quoteId,
  });
  if (outcome.when === 'period_end') {
    turn.text(t.cancelledAtEnd(day(outcome.endsAt)), [
      [item(t.undoCancelButton, 'billing:undo')],
      ...backMenu(turn),
    ]);
    return;
  }
  const [sub, wallet] = await Promise.all([
    getCurrentSubscription(turn.account.id),
    getWallet(turn.account.id),
  ]);
  const currency = sub?.currency ?? wallet.currency;
  const lines = [t.cancelledNow];
  const toWalletMinor =
    outcome.refundTo === 'none' ? 0 : outcome.refundMinor - outcome.cardRefundMinor;
  const balance = money(outcome.walletBalanceMinor ?? wallet.balanceMinor, wallet.currency);
  if (outcome.cardRefundMinor > 0 && toWalletMinor > 0) {
    lines.push(
      t.refundedSplit(money(outcome.cardRefundMinor, currency), money(toWalletMinor, currency)),
    );
  } else if (outcome.cardRefundMinor > 0) {
    lines.push(t.refundedToCard(money(outcome.cardRefundMinor, currency)));
  } else if (toWalletMinor > 0) {
    lines.push(t.refundedToWallet(money(toWalletMinor, currency), balance));
  }
  turn.text(lines.join('\n'), backMenu(turn));
}

async function undo(turn: Turn): Promise<void> {
  const live = await getLiveSubscription(turn.account.id);
  if (!live?.cancelAtPeriodEnd) return overview(turn);
  const { subscription } = await undoCancel(live._id, { clock: turn.deps.clock });
  turn.text(
    turn.t.billing.undone(subscription.periodEnd ? day(subscription.periodEnd) : '-'),
    backMenu(turn),
  );
}

// --- extra data --------------------------------------------------------------------

async function offerData(turn: Turn): Promise<void> {
  const t = turn.t.billing;
  const settings = await turn.deps.settings.get();
  // The request id makes a second tap on this Confirm the same purchase, not another one.
  const requestId = randomBytes(8).toString('hex');
  turn.text(
    t.extraDataOffer(settings.dataTopUpGb, money(settings.dataTopUpPriceMinor, settings.currency)),
    [[item(t.confirmButton, `billing:dataok:${requestId}`), item(t.notNowButton, 'billing')]],
  );
}

async function buyData(turn: Turn, requestId: string): Promise<void> {
  const t = turn.t.billing;
  const bought = await turn.deps.payments.buyDataTopUp({ accountId: turn.account.id, requestId });
  const gb = Math.floor(bought.bytes / 1_000_000_000);
  const { payment } = bought;
  switch (payment.state) {
    case 'paid': {
      if (!payment.fulfilled) {
        turn.text(t.changeProcessing, backMenu(turn));
        return;
      }
      // Fulfilment credits the wallet instead when the period it was for has ended.
      const { entries } = await listLedger(turn.account.id, { limit: LEDGER_LINES });
      const credited = entries.find((entry) => entry.reference === payment.reference);
      turn.text(
        credited
          ? t.extraDataToWallet(money(credited.amountMinor, credited.currency))
          : t.extraDataAdded(gb),
        backMenu(turn),
      );
      return;
    }
    case 'processing':
      turn.text(t.changeProcessing, backMenu(turn));
      return;
    case 'payment_link': {
      const settings = await turn.deps.settings.get();
      const amount = money(bought.amountMinor, settings.currency);
      turn.say({
        kind: 'link',
        text: turn.t.payLink(t.extraDataWhat(gb), amount),
        url: payment.authorizationUrl,
        label: turn.t.payButton(amount),
        menu: backMenu(turn),
      });
      return;
    }
  }
}

// --- wallet and auto top-up -----------------------------------------------------------

interface AutoTopUp {
  thresholdMinor: number;
  amountMinor: number;
}

/**
 * The wallet's auto top-up setting. core/wallet.ts's view leaves it out, so
 * it is read where core/payments/auto-topup.ts keeps it.
 */
async function autoTopUpOf(accountId: string): Promise<AutoTopUp | null> {
  const wallet = await Wallet.findOne({ accountId }, { autoTopUp: 1 }).lean<{
    autoTopUp?: AutoTopUp | null;
  }>();
  return wallet?.autoTopUp ?? null;
}

async function showWallet(turn: Turn): Promise<void> {
  const t = turn.t.billing;
  const accountId = turn.account.id;
  const wallet = await getWallet(accountId);
  const [{ entries }, auto] = await Promise.all([
    listLedger(accountId, { limit: LEDGER_LINES }),
    autoTopUpOf(accountId),
  ]);
  const lines = [t.wallet(money(wallet.balanceMinor, wallet.currency)), ''];
  if (entries.length === 0) {
    lines.push(t.ledgerEmpty);
  } else {
    lines.push(t.ledgerTitle);
    for (const entry of entries) {
      const amount = money(entry.amountMinor, entry.currency);
      lines.push(
        t.ledgerLine({
          day: day(entry.appliedAt ?? entry.createdAt),
          amount: entry.amountMinor > 0 ? `+${amount}` : amount,
          description: entry.description,
        }),
      );
    }
  }
  lines.push(
    '',
    auto
      ? t.autoTopUpOn(
          money(auto.thresholdMinor, wallet.currency),
          money(auto.amountMinor, wallet.currency),
        )
      : t.autoTopUpOff,
  );
  turn.text(lines.join('\n'), [
    [item(t.topUpButton, 'topup'), item(t.autoTopUpButton(auto !== null), 'billing:auto')],
    ...backMenu(turn),
  ]);
}

/** billing:auto, billing:auto:t:<threshold>, billing:auto:a:<threshold>:<amount>, :on:…, :off */
async function autoTopUp(turn: Turn, args: string[]): Promise<void> {
  const t = turn.t.billing;
  const accountId = turn.account.id;
  const { currency } = await getWallet(accountId);
  const [step, first, second] = args;
  const threshold = AUTO_THRESHOLDS_MINOR.find((value) => String(value) === first);
  const amount = AUTO_AMOUNTS_MINOR.find((value) => String(value) === second);

  if (step === 'off') {
    await setAutoTopUp(accountId, null);
    turn.text(t.autoIsOff, backMenu(turn));
    return;
  }
  if (step === 'on' && threshold !== undefined && amount !== undefined) {
    await setAutoTopUp(accountId, { thresholdMinor: threshold, amountMinor: amount });
    turn.text(t.autoIsOn(money(threshold, currency), money(amount, currency)), [
      [item(t.walletButton, 'billing:wallet')],
      ...backMenu(turn),
    ]);
    return;
  }
  if (step === 'a' && threshold !== undefined && amount !== undefined) {
    turn.text(t.autoConfirm(money(threshold, currency), money(amount, currency)), [
      [item(t.autoTurnOnButton, `billing:auto:on:${threshold}:${amount}`)],
      [item(t.notNowButton, 'billing:wallet')],
    ]);
    return;
  }
  if (step === 't' && threshold !== undefined) {
    turn.text(t.autoChooseAmount(money(threshold, currency)), [
      AUTO_AMOUNTS_MINOR.map((value) =>
        item(money(value, currency), `billing:auto:a:${threshold}:${value}`),
      ),
      [item(t.notNowButton, 'billing:wallet')],
    ]);
    return;
  }
  const current = await autoTopUpOf(accountId);
  const menu: Menu = [
    AUTO_THRESHOLDS_MINOR.map((value) => item(money(value, currency), `billing:auto:t:${value}`)),
  ];
  if (current) menu.push([item(t.autoTurnOffButton, 'billing:auto:off')]);
  menu.push([item(t.notNowButton, 'billing:wallet')]);
  const state = current
    ? t.autoTopUpOn(money(current.thresholdMinor, currency), money(current.amountMinor, currency))
    : t.autoTopUpOff;
  turn.text(`${state}\n\n${t.autoChooseThreshold}`, menu);
}

// --- invoices --------------------------------------------------------------------------

async function showInvoices(turn: Turn, intro?: string): Promise<void> {
  const t = turn.t.billing;
  const invoices = await listInvoices(turn.account.id, { limit: INVOICE_BUTTONS });
  if (invoices.length === 0) {
    turn.text(t.invoicesNone, backMenu(turn));
    return;
  }
  turn.text(intro ?? t.invoicesTitle, [
    ...invoices.map((invoice) => [
      item(
        t.invoiceLabel({
          number: invoice.number,
          day: day(invoice.issuedAt),
          total: money(invoice.totalMinor, invoice.currency),
          creditNote: invoice.kind === 'credit_note',
        }),
        `billing:invoice:${invoice.number}`,
      ),
    ]),
    ...backMenu(turn),
  ]);
}

async function sendInvoice(turn: Turn, number: string): Promise<void> {
  const invoice = await getInvoice(turn.account.id, number);
  if (!invoice) return showInvoices(turn, turn.t.billing.invoiceMissing);
  turn.say({
    kind: 'document',
    bytes: await renderInvoicePdf(invoice),
    filename: `${invoice.number}.pdf`,
    mimeType: 'application/pdf',
    caption: turn.t.billing.invoiceCaption(invoice.number, invoice.kind === 'credit_note'),
  });
}

function minutesUntil(turn: Turn, at: Date): number {
  return Math.max(1, Math.floor((at.getTime() - turn.deps.clock.now().getTime()) / 60_000));
}

export const billingJourney: Journey = {
  actions: {
    async billing(turn) {
      const [sub, first = ''] = turn.args;
      switch (sub) {
        case 'change':
          return first ? quoteChange(turn, first) : chooseTarget(turn);
        case 'changeok':
          return confirmChange(turn, first);
        case 'cancel':
          if (first === 'now') return quoteCancel(turn, 'now');
          if (first === 'end') return quoteCancel(turn, 'period_end');
          return chooseCancel(turn);
        case 'cancelok':
          return confirmCancel(turn, first);
        case 'undo':
          return undo(turn);
        case 'data':
          return offerData(turn);
        case 'dataok':
          return buyData(turn, first);
        case 'wallet':
          return showWallet(turn);
        case 'auto':
          return autoTopUp(turn, turn.args.slice(1));
        case 'invoices':
          return showInvoices(turn);
        case 'invoice':
          return sendInvoice(turn, first);
        default:
          return overview(turn);
      }
    },
  },
};
