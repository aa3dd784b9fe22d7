/**
 * /api/v1/me/...: billing self-service, the REST face of the bots' shop and
 * billing journeys (bot/core/journeys/shop.ts and billing.ts). Every route
 * calls the core function the bot calls, so refusals carry core's own words
 * (the bot shows `error.message` as is):
 *
 *   subscription      -> getCurrentSubscription, priceForRenewal, currentQuotaWindow,
 *                        the trial deposit's invoice and refunds
 *   checkout / trial  -> payments.checkout (purpose plan / trial_deposit): a Paystack link
 *   payg              -> startPayg (as the bot's "pay as you go" button)
 *   plan change       -> payments.quotePlanChange, then confirmPlanChange (stored quote, 15 min)
 *   cancellation      -> payments.quoteCancellation, then confirmCancellation; undoCancel
 *   wallet            -> getWallet, listLedger; top-up: payments.checkout (wallet_topup)
 *   extra data        -> payments.buyDataTopUp (saved card, else a link)
 *   auto top-up       -> setAutoTopUp
 *   invoices          -> listInvoices, getInvoice, renderInvoicePdf
 *
 * Anything of another account (a quote id, an invoice number) answers 404.
 */
import { z } from 'zod';
import { DomainError, isDomainError } from '../../../lib/errors.js';
import type { Currency } from '../../../lib/money.js';
import { getAccountView } from '../../../core/accounts/index.js';
import { getInvoice, getInvoiceByPaymentReference, listInvoices } from '../../../core/invoices.js';
import type { IssuedInvoice } from '../../../core/invoices.js';
import { renderInvoicePdf } from '../../../core/invoice-pdf.js';
import { setAutoTopUp } from '../../../core/payments/index.js';
import type { Checkout, PlanChangeOutcome } from '../../../core/payments/index.js';
import { MAX_TOPUP_MINOR, MIN_TOPUP_MINOR } from '../../../core/payments/checkout.js';
import { getPlan, priceForRenewal } from '../../../core/plans.js';
import {
  currentQuotaWindow,
  getCurrentSubscription,
  getLiveSubscription,
  startPayg,
  undoCancel,
} from '../../../core/subscriptions.js';
import { getSeat } from '../../../core/team.js';
import { getWallet, listLedger } from '../../../core/wallet.js';
import { BillingQuote } from '../../../models/billing-quote.js';
import { Wallet } from '../../../models/wallet.js';
import type { SubscriptionRecord } from '../../../models/subscription.js';
import { fileRoute, jsonRoute, type AnyRoute, type ApiDeps } from '../route.js';
import { currency, money, objectId } from '../schemas.js';

const TAG = 'Billing';
const GB = 1_000_000_000;

/**
 * Each checkout, charge or quote talks to Paystack or stores something: a
 * generous per-account ceiling keeps a runaway client from spraying them.
 */
const MONEY_LIMIT = {
  name: 'billing-money',
  perAccount: { rules: [{ max: 30, windowMs: 10 * 60_000 }] },
} as const;

// --- shared shapes ---------------------------------------------------------------

const checkoutView = z.object({
  reference: z.string().describe('Our payment reference; the confirmation names it.'),
  authorizationUrl: z.string().describe('The Paystack page where the customer pays.'),
  amountMinor: z.number().int(),
  currency,
  reused: z
    .boolean()
    .describe('True when an open checkout for the same thing existed and its link is given again.'),
});

function toCheckoutView(checkout: Checkout): z.input<typeof checkoutView> {
  return {
    reference: checkout.reference,
    authorizationUrl: checkout.authorizationUrl,
    amountMinor: checkout.amountMinor,
    currency: checkout.currency,
    reused: checkout.reused,
  };
}

const refundView = z.object({
  amountMinor: z.number().int(),
  currency,
  method: z.enum(['card', 'wallet']),
  status: z
    .enum([
      'requested',
      'pending',
      'processing',
      'processed',
      'failed',
      'needs-attention',
      'refused',
    ])
    .describe(
      "'processed': the money is back; 'failed' / 'needs-attention': delayed at the bank, our team follows up; 'refused': already refunded.",
    ),
  processedAt: z.date().nullable(),
});

const depositView = z.object({
  amountMinor: z.number().int(),
  currency,
  state: z
    .enum(['held', 'returning', 'returned', 'delayed'])
    .describe(
      "'held' while the trial runs; then 'returning' until every refund is processed ('returned'); 'delayed' when the bank holds one up.",
    ),
  returnTo: z.enum(['card', 'wallet']).describe('Where the deposit goes back.'),
  refunds: z.array(refundView),
});

const subscriptionView = z.object({
  planCode: z.string(),
  planName: z.string(),
  planKind: z.enum(['trial', 'recurring', 'payg']),
  status: z.enum(['pending_payment', 'trialing', 'active', 'past_due', 'cancelled', 'expired']),
  currency,
  priceMinor: z.number().int().describe('Price of the current period as bought (0: trial, PAYG).'),
  periodStart: z.date().nullable(),
  periodEnd: z.date().nullable().describe('End of the paid period (exclusive); null for PAYG.'),
  renewsAt: z
    .date()
    .nullable()
    .describe('When the saved card is charged for the next period; null when it will not renew.'),
  renewal: z
    .object({ planCode: z.string(), amountMinor: z.number().int(), currency })
    .nullable()
    .describe('What the renewal will charge (a scheduled downgrade shows the new plan).'),
  scheduledPlanCode: z.string().nullable().describe('A plan change waiting for the period end.'),
  cancelAtPeriodEnd: z.boolean(),
  graceEndsAt: z.date().nullable().describe('Past due: access continues until then.'),
  trialEndsAt: z.date().nullable(),
  quotaPeriod: z
    .object({ start: z.date(), end: z.date() })
    .nullable()
    .describe('The data quota window running now; null without a data quota.'),
  endedAt: z.date().nullable(),
  deposit: depositView.nullable().describe('The trial deposit (trials only).'),
});

const quotaWindow = (sub: SubscriptionRecord, now: Date) => currentQuotaWindow(sub, now);

async function depositOf(
  deps: ApiDeps,
  trial: SubscriptionRecord,
): Promise<z.input<typeof depositView>> {
  const reference = trial.activatedByPaymentRef;
  const [invoice, settings] = await Promise.all([
    reference ? getInvoiceByPaymentReference(reference) : null,
    deps.settings.get(),
  ]);
  const amount = {
    amountMinor: invoice?.totalMinor ?? settings.trialDepositMinor,
    currency: invoice?.currency ?? settings.currency,
  };
  const returnTo = settings.trialDepositRefund === 'wallet' ? 'wallet' : 'card';
  if (trial.status === 'trialing') return { ...amount, state: 'held', returnTo, refunds: [] };
  const refunds = reference ? await deps.payments.listRefunds(reference) : [];
  const delayed = refunds.some((r) => r.status === 'failed' || r.status === 'needs-attention');
  const returned =
    refunds.length > 0 && refunds.every((r) => r.status === 'processed' || r.status === 'refused');
  return {
    ...amount,
    state: delayed ? 'delayed' : returned ? 'returned' : 'returning',
    returnTo: refunds[0]?.method ?? returnTo,
    refunds: refunds.map((refund) => ({
      amountMinor: refund.amountMinor,
      currency: refund.currency,
      method: refund.method,
      status: refund.status,
      processedAt: refund.processedAt ?? null,
    })),
  };
}

async function toSubscriptionView(
  deps: ApiDeps,
  sub: SubscriptionRecord,
): Promise<z.input<typeof subscriptionView>> {
  const plan = await getPlan(sub.planCode);
  const now = deps.clock.now();
  const renews =
    sub.planKind === 'recurring' &&
    (sub.status === 'active' || sub.status === 'past_due') &&
    !sub.cancelAtPeriodEnd;
  const nextPlanCode = sub.scheduledPlanCode ?? sub.planCode;
  // A move to pay as you go at the period end has no renewal price: PAYG is paid by the hour.
  const renewal = renews
    ? await priceForRenewal({ planCode: nextPlanCode, currency: sub.currency }).catch(
        (error: unknown) => {
          if (isDomainError(error, 'UNSUPPORTED')) return null;
          throw error;
        },
      )
    : null;
  const window =
    sub.status === 'trialing' || sub.status === 'active' ? quotaWindow(sub, now) : null;
  return {
    planCode: sub.planCode,
    planName: plan.name,
    planKind: sub.planKind,
    status: sub.status,
    currency: sub.currency,
    priceMinor: sub.priceMinor,
    periodStart: sub.periodStart ?? null,
    periodEnd: sub.periodEnd ?? null,
    renewsAt: renewal ? (sub.periodEnd ?? null) : null,
    renewal: renewal
      ? { planCode: nextPlanCode, amountMinor: renewal.priceMinor, currency: renewal.currency }
      : null,
    scheduledPlanCode: sub.scheduledPlanCode ?? null,
    cancelAtPeriodEnd: sub.cancelAtPeriodEnd,
    graceEndsAt: sub.status === 'past_due' ? (sub.graceEndsAt ?? null) : null,
    trialEndsAt: sub.trialEndsAt ?? null,
    quotaPeriod: window ? { start: window.start, end: window.end } : null,
    endedAt: sub.endedAt ?? null,
    deposit: sub.planKind === 'trial' ? await depositOf(deps, sub) : null,
  };
}

// --- plan change -------------------------------------------------------------------

const planChangeQuoteView = z.object({
  quoteId: z.string().describe('Confirm with POST /me/plan-change/confirm before `expiresAt`.'),
  expiresAt: z.date(),
  fromPlanCode: z.string(),
  toPlanCode: z.string(),
  direction: z.enum(['upgrade', 'downgrade']),
  effective: z.enum(['now', 'period_end']),
  effectiveAt: z.date(),
  newPeriod: z
    .enum(['rest_of_period', 'fresh_period', 'none'])
    .describe(
      "'rest_of_period': the new plan is charged until the current renewal date; 'fresh_period': it starts a new period (bought like a new plan).",
    ),
  currency,
  creditMinor: z.number().int().describe('Credit for the unused part of the current period.'),
  costMinor: z.number().int().describe('The new plan’s charge now.'),
  dueNowMinor: z.number().int().describe('Charged on confirming: cost minus credit, at least 0.'),
  walletCreditMinor: z.number().int().describe('Credit beyond the cost, paid into the wallet.'),
  renewalPriceMinor: z.number().int().nullable(),
  membersLosingAccess: z.number().int().describe('Team members whose access stops.'),
  lines: z.array(z.string()).describe('The quote in the customer’s words, as the bots show it.'),
});

const planChangeOutcomeView = z.discriminatedUnion('state', [
  z.object({
    state: z.literal('applied'),
    quoteId: z.string(),
    toPlanCode: z.string(),
    walletCreditMinor: z.number().int(),
  }),
  z.object({
    state: z.literal('scheduled'),
    quoteId: z.string(),
    toPlanCode: z.string(),
    at: z.date().describe('The period end, when the plan moves.'),
  }),
  z.object({
    state: z.literal('payment_link'),
    quoteId: z.string(),
    reference: z.string(),
    authorizationUrl: z.string().describe('The saved card could not be charged: pay here.'),
    amountMinor: z.number().int(),
  }),
  z.object({
    state: z.literal('processing'),
    quoteId: z.string(),
    reference: z.string().describe('The bank is confirming the charge; do not pay again.'),
  }),
  z.object({
    state: z.literal('use_checkout'),
    quoteId: z.string(),
    toPlanCode: z.string().describe('Starts a fresh period: buy it with POST /me/checkout.'),
  }),
]);

function toOutcomeView(outcome: PlanChangeOutcome): z.input<typeof planChangeOutcomeView> {
  return outcome;
}

// --- cancellation ------------------------------------------------------------------------

const cancellationQuoteView = z.object({
  quoteId: z.string().describe('Confirm with POST /me/cancel before `expiresAt`.'),
  expiresAt: z.date(),
  when: z.enum(['now', 'period_end']),
  endsAt: z.date().describe('When access stops.'),
  currency,
  refundMinor: z.number().int().describe('Everything given back.'),
  refundTo: z
    .enum(['wallet', 'card', 'none'])
    .describe(
      "'card': `cardRefundMinor` to the card that paid the period, the rest to the wallet.",
    ),
  cardRefundMinor: z.number().int(),
  walletRefundMinor: z.number().int(),
  lines: z.array(z.string()).describe('What cancelling means, in the bots’ words.'),
});

const cancellationView = cancellationQuoteView.extend({
  planCode: z.string(),
  cancelAtPeriodEnd: z
    .boolean()
    .describe('Already set to stop at the period end (POST /me/cancel/undo takes it back).'),
  choices: z
    .array(z.enum(['now', 'period_end']))
    .describe('When the plan can stop: a paid period can run out; anything else stops now.'),
});

const cancelOutcomeView = z.object({
  quoteId: z.string(),
  when: z.enum(['now', 'period_end']),
  endsAt: z.date(),
  currency,
  refundMinor: z.number().int(),
  refundTo: z.enum(['wallet', 'card', 'none']),
  cardRefundMinor: z.number().int(),
  walletRefundMinor: z.number().int(),
  walletBalanceMinor: z.number().int().nullable(),
  alreadyCancelled: z.boolean().describe('True when this quote had been carried out before.'),
  message: z.string(),
});

function walletPart(refundTo: string, refundMinor: number, cardRefundMinor: number): number {
  return refundTo === 'none' ? 0 : refundMinor - cardRefundMinor;
}

/** Where a paid period can run out (as the bot offers it); anything else stops now. */
function cancelChoices(live: SubscriptionRecord, now: Date): ('now' | 'period_end')[] {
  const canRunOut =
    live.planKind === 'recurring' &&
    live.status === 'active' &&
    !live.cancelAtPeriodEnd &&
    live.periodEnd instanceof Date &&
    live.periodEnd.getTime() > now.getTime();
  return canRunOut ? ['period_end', 'now'] : ['now'];
}

// --- wallet and auto top-up ----------------------------------------------------------------

const ledgerLine = z.object({
  id: z.string(),
  kind: z.string().describe('topup, debit, refund, credit, ...'),
  amountMinor: z.number().int().describe('Signed: credits positive, debits negative.'),
  currency,
  balanceAfterMinor: z.number().int().nullable(),
  reference: z.string().nullable(),
  description: z.string(),
  at: z.date(),
});

const autoTopUpView = z.object({
  enabled: z.boolean(),
  thresholdMinor: z.number().int().nullable().describe('Top up when the balance falls below.'),
  amountMinor: z.number().int().nullable().describe('Charged to the saved card each time.'),
  currency,
});

/**
 * The wallet's auto top-up setting. core/wallet.ts's view leaves it out, so it
 * is read where core/payments/auto-topup.ts keeps it (as the bot does).
 */
async function autoTopUpOf(
  accountId: string,
): Promise<{ thresholdMinor: number; amountMinor: number } | null> {
  const wallet = await Wallet.findOne({ accountId }, { autoTopUp: 1 }).lean<{
    autoTopUp?: { thresholdMinor: number; amountMinor: number } | null;
  }>();
  return wallet?.autoTopUp ?? null;
}

async function readAutoTopUp(accountId: string): Promise<z.input<typeof autoTopUpView>> {
  const [wallet, auto] = await Promise.all([getWallet(accountId), autoTopUpOf(accountId)]);
  return {
    enabled: auto !== null,
    thresholdMinor: auto?.thresholdMinor ?? null,
    amountMinor: auto?.amountMinor ?? null,
    currency: wallet.currency,
  };
}

// --- invoices --------------------------------------------------------------------------------

const invoiceSummary = z.object({
  number: z.string().describe('e.g. ATL-2026-000123'),
  kind: z.enum(['invoice', 'credit_note']),
  issuedAt: z.date(),
  paidAt: z.date(),
  currency,
  netMinor: z.number().int(),
  vatMinor: z.number().int(),
  totalMinor: z.number().int(),
  credits: z.string().nullable().describe('A credit note: the number of the invoice it credits.'),
  pdfPath: z.string().describe('Where the PDF is, under /api/v1.'),
});

const invoiceView = invoiceSummary.extend({
  paymentReference: z.string(),
  customer: z.object({
    name: z.string().nullable(),
    email: z.string().nullable(),
    phone: z.string().nullable(),
  }),
  seller: z.object({
    name: z.string(),
    address: z.string(),
    email: z.string(),
    taxId: z.string().nullable(),
  }),
  vat: z.object({ enabled: z.boolean(), rateBps: z.number().int() }),
  lines: z.array(
    z.object({
      description: z.string(),
      quantity: z.number().int(),
      unitMinor: z.number().int().describe('VAT included.'),
      amountMinor: z.number().int(),
    }),
  ),
});

const invoiceNumber = z
  .string()
  .regex(/^[A-Za-z]{2,10}-\d{4}-\d{1,12}$/, 'must be an invoice number like ATL-2026-000123');

function toInvoiceSummary(invoice: IssuedInvoice): z.input<typeof invoiceSummary> {
  return {
    number: invoice.number,
    kind: invoice.kind,
    issuedAt: invoice.issuedAt,
    paidAt: invoice.paidAt,
    currency: invoice.currency,
    netMinor: invoice.netMinor,
    vatMinor: invoice.vatMinor,
    totalMinor: invoice.totalMinor,
    credits: invoice.credits?.invoiceNumber ?? null,
    pdfPath: `/me/invoices/${invoice.number}/pdf`,
  };
}

/** The caller's invoice, or 404 whether it does not exist or is someone else's. */
async function ownInvoice(accountId: string, number: string): Promise<IssuedInvoice> {
  const invoice = await getInvoice(accountId, number);
  if (!invoice) throw new DomainError('NOT_FOUND', 'I cannot find that invoice.');
  return invoice;
}

function moneyOf(amountMinor: number, currencyCode: Currency): z.input<typeof money> {
  return { amountMinor, currency: currencyCode };
}

// --- the routes -------------------------------------------------------------------------------

export const billingRoutes: AnyRoute[] = [
  jsonRoute({
    operationId: 'getSubscription',
    method: 'get',
    path: '/me/subscription',
    tag: TAG,
    summary: 'The current plan and where it stands',
    description:
      'The live subscription (or the latest ended one, so "expired" can be told from "never had one"): plan, status, period, renewal date and price, cancel-at-period-end, grace, trial end and the trial deposit, and the data quota window running now. `teamOwnerEmail` is set for a team member, whose access is the owner’s plan.',
    access: 'customer',
    response: z.object({
      subscription: subscriptionView.nullable(),
      teamOwnerEmail: z.string().nullable(),
    }),
    async handler({ caller, deps }) {
      const [sub, seat] = await Promise.all([
        getCurrentSubscription(caller.accountId),
        getSeat(caller.accountId),
      ]);
      const owner = seat ? await getAccountView(seat.ownerAccountId) : null;
      return {
        subscription: sub ? await toSubscriptionView(deps, sub) : null,
        teamOwnerEmail: owner?.email ?? null,
      };
    },
  }),

  jsonRoute({
    operationId: 'startCheckout',
    method: 'post',
    path: '/me/checkout',
    tag: TAG,
    summary: 'Buy a plan: a Paystack payment link',
    description:
      'Opens (or hands out again) a checkout for a recurring plan. The plan starts once Paystack confirms the payment. Refused while a paid plan runs (change plans instead: 409), for the trial (POST /me/trial) and for pay as you go (POST /me/payg).',
    access: 'customer',
    rateLimit: MONEY_LIMIT,
    body: z.object({ planCode: z.string().min(1).max(40) }),
    response: checkoutView,
    async handler({ caller, body, deps }) {
      const checkout = await deps.payments.checkout({
        accountId: caller.accountId,
        purpose: 'plan',
        planCode: body.planCode,
      });
      return toCheckoutView(checkout);
    },
  }),

  jsonRoute({
    operationId: 'startTrial',
    method: 'post',
    path: '/me/trial',
    tag: TAG,
    summary: 'Start a trial: the deposit’s payment link',
    description:
      'A link to pay the refundable trial deposit; the trial starts once it is paid and the deposit comes back when it ends. One trial per person: refused with 409 TRIAL_NOT_ALLOWED (`details.claim` says what had one: account, email, telegram, whatsapp).',
    access: 'customer',
    rateLimit: MONEY_LIMIT,
    response: checkoutView,
    async handler({ caller, deps }) {
      const checkout = await deps.payments.checkout({
        accountId: caller.accountId,
        purpose: 'trial_deposit',
      });
      return toCheckoutView(checkout);
    },
  }),

  jsonRoute({
    operationId: 'startPayg',
    method: 'post',
    path: '/me/payg',
    tag: TAG,
    summary: 'Start pay as you go',
    description:
      'Pay as you go needs no purchase: it starts now and the wallet pays each connected hour (top it up with POST /me/wallet/top-up). Repeating it is harmless; refused (409) while another plan runs (move with a plan change instead).',
    access: 'customer',
    response: subscriptionView,
    async handler({ caller, deps }) {
      const live = await getLiveSubscription(caller.accountId);
      const sub =
        live?.planKind === 'payg' && live.status === 'active'
          ? live
          : await startPayg({ accountId: caller.accountId, clock: deps.clock });
      return toSubscriptionView(deps, sub);
    },
  }),

  jsonRoute({
    operationId: 'quotePlanChange',
    method: 'post',
    path: '/me/plan-change/quote',
    tag: TAG,
    summary: 'What moving to another plan costs (a quote)',
    description:
      'A prorated quote, stored for 15 minutes: the credit for the unused part of this period, the new plan’s charge, what is due now or credited to the wallet, and when it takes effect (upgrades now; downgrades at the period end unless the business applies them at once). `when` states what the caller expects: a change that cannot happen then is refused with 409 TIMING_NOT_AVAILABLE. Nothing changes until confirmed.',
    access: 'customer',
    rateLimit: MONEY_LIMIT,
    body: z.object({
      planCode: z.string().min(1).max(40),
      when: z.enum(['now', 'period_end']).optional(),
    }),
    response: planChangeQuoteView,
    async handler({ caller, body, deps }) {
      const offer = await deps.payments.quotePlanChange({
        accountId: caller.accountId,
        toPlanCode: body.planCode,
      });
      if (body.when !== undefined && body.when !== offer.effective) {
        const at = offer.effectiveAt.toISOString().slice(0, 10);
        throw new DomainError(
          'CONFLICT',
          offer.effective === 'now'
            ? `Moving to ${offer.toPlanCode} takes effect at once; it cannot wait for the period end.`
            : `Moving to ${offer.toPlanCode} takes effect at the end of the period (${at}); it cannot apply now.`,
          {
            details: {
              reason: 'TIMING_NOT_AVAILABLE',
              effective: offer.effective,
              effectiveAt: offer.effectiveAt.toISOString(),
            },
          },
        );
      }
      return {
        quoteId: offer.quoteId,
        expiresAt: offer.expiresAt,
        fromPlanCode: offer.fromPlanCode,
        toPlanCode: offer.toPlanCode,
        direction: offer.direction,
        effective: offer.effective,
        effectiveAt: offer.effectiveAt,
        newPeriod: offer.newPeriod,
        currency: offer.currency,
        creditMinor: offer.creditMinor,
        costMinor: offer.costMinor,
        dueNowMinor: offer.dueNowMinor,
        walletCreditMinor: offer.walletCreditMinor,
        renewalPriceMinor: offer.renewalPriceMinor,
        membersLosingAccess: offer.membersLosingAccess,
        lines: offer.lines,
      };
    },
  }),

  jsonRoute({
    operationId: 'confirmPlanChange',
    method: 'post',
    path: '/me/plan-change/confirm',
    tag: TAG,
    summary: 'Carry out a plan-change quote',
    description:
      'Applies the quote once: `applied` (nothing due, or the saved card was charged), `scheduled` (at the period end), `payment_link` (the card could not be charged without the customer: pay at the link and the plan changes when the payment arrives), `processing` (the bank is confirming; do not pay again) or `use_checkout` (from a trial or pay as you go the new plan is bought with POST /me/checkout). Repeating it answers the same outcome. An expired or stale quote: 409 with `details.reason` EXPIRED or STALE; an unknown one (or another account’s): 404.',
    access: 'customer',
    rateLimit: MONEY_LIMIT,
    body: z.object({ quoteId: objectId }),
    response: planChangeOutcomeView,
    async handler({ caller, body, deps }) {
      const outcome = await deps.payments.confirmPlanChange({
        accountId: caller.accountId,
        quoteId: body.quoteId,
      });
      return toOutcomeView(outcome);
    },
  }),

  jsonRoute({
    operationId: 'getCancellation',
    method: 'get',
    path: '/me/cancellation',
    tag: TAG,
    summary: 'What cancelling the plan means now (a quote)',
    description:
      'A cancellation quote, stored for 15 minutes, in the bots’ words: when access stops and what is refunded, how much and where (wallet or card). `when` defaults to the period end for a paid period that can run out, else now. Confirm with POST /me/cancel. No running plan: 404.',
    access: 'customer',
    query: z.object({ when: z.enum(['now', 'period_end']).optional() }),
    response: cancellationView,
    async handler({ caller, query, deps }) {
      const live = await getLiveSubscription(caller.accountId);
      const choices = live ? cancelChoices(live, deps.clock.now()) : [];
      const quote = await deps.payments.quoteCancellation({
        accountId: caller.accountId,
        when: query.when ?? choices[0] ?? 'now',
      });
      const sub = live ?? (await getCurrentSubscription(caller.accountId));
      return {
        quoteId: quote.quoteId,
        expiresAt: quote.expiresAt,
        when: quote.when,
        endsAt: quote.endsAt,
        currency: sub?.currency ?? (await deps.settings.get()).currency,
        refundMinor: quote.refundMinor,
        refundTo: quote.refundTo,
        cardRefundMinor: quote.cardRefundMinor,
        walletRefundMinor: walletPart(quote.refundTo, quote.refundMinor, quote.cardRefundMinor),
        lines: quote.lines,
        planCode: sub?.planCode ?? '',
        cancelAtPeriodEnd: live?.cancelAtPeriodEnd ?? false,
        choices,
      };
    },
  }),

  jsonRoute({
    operationId: 'cancelPlan',
    method: 'post',
    path: '/me/cancel',
    tag: TAG,
    summary: 'Cancel the plan (carry out a cancellation quote)',
    description:
      'Carries out the quote from GET /me/cancellation, once: at the period end (the plan runs to its end, POST /me/cancel/undo takes it back) or now (access stops, the unused part refunded as quoted). Repeating it answers the same outcome with `alreadyCancelled: true` and refunds nothing twice. Expired or stale quote: 409 (`details.reason` EXPIRED or STALE); unknown or another account’s: 404. The refund method is the business’s setting, shown in the quote.',
    access: 'customer',
    rateLimit: MONEY_LIMIT,
    body: z.object({
      confirm: z.literal(true).describe('Must be true: cancelling is not undone by accident.'),
      quoteId: objectId,
    }),
    response: cancelOutcomeView,
    async handler({ caller, body, deps }) {
      const before = await BillingQuote.findOne(
        { _id: body.quoteId, accountId: caller.accountId },
        { status: 1 },
      ).lean<{ status: string }>();
      const outcome = await deps.payments.confirmCancellation({
        accountId: caller.accountId,
        quoteId: body.quoteId,
      });
      const [sub, wallet] = await Promise.all([
        getCurrentSubscription(caller.accountId),
        getWallet(caller.accountId),
      ]);
      const currencyCode = sub?.currency ?? wallet.currency;
      const walletRefundMinor = walletPart(
        outcome.refundTo,
        outcome.refundMinor,
        outcome.cardRefundMinor,
      );
      const alreadyCancelled = before?.status === 'done';
      const day = outcome.endsAt.toISOString().slice(0, 10);
      const done =
        outcome.when === 'period_end'
          ? `Your plan stops on ${day} and will not renew.`
          : 'Your plan has ended.';
      return {
        quoteId: outcome.quoteId,
        when: outcome.when,
        endsAt: outcome.endsAt,
        currency: currencyCode,
        refundMinor: outcome.refundMinor,
        refundTo: outcome.refundTo,
        cardRefundMinor: outcome.cardRefundMinor,
        walletRefundMinor,
        walletBalanceMinor: outcome.walletBalanceMinor ?? null,
        alreadyCancelled,
        message: alreadyCancelled ? `Already cancelled: ${done}` : `Done: ${done}`,
      };
    },
  }),

  jsonRoute({
    operationId: 'undoCancel',
    method: 'post',
    path: '/me/cancel/undo',
    tag: TAG,
    summary: 'Keep the plan (take back a cancel at the period end)',
    description:
      'While the period runs, a cancellation at its end can be taken back; the plan renews as before. Nothing set to cancel: 409.',
    access: 'customer',
    response: subscriptionView,
    async handler({ caller, deps }) {
      const live = await getLiveSubscription(caller.accountId);
      if (!live?.cancelAtPeriodEnd) {
        throw new DomainError('CONFLICT', 'Your plan is not set to be cancelled.', {
          details: { reason: 'NOT_CANCELLING' },
        });
      }
      const { subscription } = await undoCancel(live._id, { clock: deps.clock });
      return toSubscriptionView(deps, subscription);
    },
  }),

  jsonRoute({
    operationId: 'getWallet',
    method: 'get',
    path: '/me/wallet',
    tag: TAG,
    summary: 'Wallet balance and its latest movements',
    description:
      'The balance and the ledger, newest first (pass `before` = the previous page’s `nextBefore` for older lines), and the auto top-up setting.',
    access: 'customer',
    query: z.object({
      limit: z.coerce.number().int().min(1).max(100).default(20),
      before: z.coerce.number().int().min(1).optional(),
    }),
    response: z.object({
      balanceMinor: z.number().int(),
      currency,
      ledger: z.array(ledgerLine),
      nextBefore: z.number().int().nullable(),
      autoTopUp: autoTopUpView,
      topUpLimits: z.object({ minMinor: z.number().int(), maxMinor: z.number().int() }),
    }),
    async handler({ caller, query }) {
      const wallet = await getWallet(caller.accountId);
      const [{ entries, nextBefore }, autoTopUp] = await Promise.all([
        listLedger(caller.accountId, {
          limit: query.limit,
          ...(query.before === undefined ? {} : { before: query.before }),
        }),
        readAutoTopUp(caller.accountId),
      ]);
      return {
        balanceMinor: wallet.balanceMinor,
        currency: wallet.currency,
        ledger: entries.map((entry) => ({
          id: entry.id,
          kind: entry.kind,
          amountMinor: entry.amountMinor,
          currency: entry.currency,
          balanceAfterMinor: entry.balanceAfterMinor ?? null,
          reference: entry.reference ?? null,
          description: entry.description,
          at: entry.appliedAt ?? entry.createdAt,
        })),
        nextBefore,
        autoTopUp,
        topUpLimits: { minMinor: MIN_TOPUP_MINOR, maxMinor: MAX_TOPUP_MINOR },
      };
    },
  }),

  jsonRoute({
    operationId: 'topUpWallet',
    method: 'post',
    path: '/me/wallet/top-up',
    tag: TAG,
    summary: 'Top up the wallet: a Paystack payment link',
    description: `The wallet is credited once Paystack confirms the payment. Between ${MIN_TOPUP_MINOR} and ${MAX_TOPUP_MINOR} minor units (400 VALIDATION_FAILED otherwise, in the bots’ words).`,
    access: 'customer',
    rateLimit: MONEY_LIMIT,
    body: z.object({
      amountMinor: z
        .number()
        .int()
        .describe(`In minor units, from ${MIN_TOPUP_MINOR} to ${MAX_TOPUP_MINOR}.`),
    }),
    response: checkoutView,
    async handler({ caller, body, deps }) {
      const checkout = await deps.payments.checkout({
        accountId: caller.accountId,
        purpose: 'wallet_topup',
        amountMinor: body.amountMinor,
      });
      return toCheckoutView(checkout);
    },
  }),

  jsonRoute({
    operationId: 'getDataTopUp',
    method: 'get',
    path: '/me/data-top-up',
    tag: TAG,
    summary: 'The extra-data pack on sale',
    description:
      'One pack is sold: its size and price, and whether the caller can buy it now (a running plan with a data allowance; pay as you go has no cap to raise).',
    access: 'customer',
    response: z.object({
      packs: z.array(
        z.object({
          pack: z.literal('standard'),
          gb: z.number().int().describe('GB = 10^9 bytes.'),
          bytes: z.number().int(),
          price: money,
        }),
      ),
      canBuy: z.boolean(),
    }),
    async handler({ caller, deps }) {
      const settings = await deps.settings.get();
      const live = await getLiveSubscription(caller.accountId);
      const plan = live ? await getPlan(live.planCode) : null;
      const onSale = settings.dataTopUpPriceMinor > 0;
      return {
        packs: onSale
          ? [
              {
                pack: 'standard' as const,
                gb: settings.dataTopUpGb,
                bytes: settings.dataTopUpGb * GB,
                price: moneyOf(settings.dataTopUpPriceMinor, settings.currency),
              },
            ]
          : [],
        canBuy: onSale && live?.status === 'active' && Boolean(plan?.quota),
      };
    },
  }),

  jsonRoute({
    operationId: 'buyDataTopUp',
    method: 'post',
    path: '/me/data-top-up',
    tag: TAG,
    summary: 'Buy extra data for this quota period',
    description:
      'Charges the saved card for the pack (`paid`: the data is added to the period running now), or answers a Paystack link when the card cannot be charged without the customer (`payment_link`), or `processing` while the bank confirms. Send the same `requestId` to retry safely: it is the same purchase, never a second one. Refused (409) without a running plan with a data allowance.',
    access: 'customer',
    rateLimit: MONEY_LIMIT,
    body: z.object({
      pack: z.literal('standard').default('standard'),
      requestId: z
        .string()
        .regex(/^[A-Za-z0-9-]{1,64}$/, 'letters, digits and dashes only')
        .optional()
        .describe('Makes a retried request the same purchase.'),
    }),
    response: z.object({
      state: z.enum(['paid', 'processing', 'payment_link']),
      bytes: z.number().int(),
      price: money,
      reference: z.string(),
      authorizationUrl: z.string().nullable(),
      added: z
        .boolean()
        .describe(
          'The data is in this period’s allowance (false while processing or unpaid, or when the period ended first and the money went to the wallet).',
        ),
    }),
    async handler({ caller, body, deps }) {
      const bought = await deps.payments.buyDataTopUp({
        accountId: caller.accountId,
        ...(body.requestId === undefined ? {} : { requestId: body.requestId }),
      });
      const settings = await deps.settings.get();
      const { payment } = bought;
      let added = false;
      if (payment.state === 'paid' && payment.fulfilled) {
        // Fulfilment credits the wallet instead when the period it was for has ended.
        const { entries } = await listLedger(caller.accountId, { limit: 20 });
        added = !entries.some((entry) => entry.reference === payment.reference);
      }
      return {
        state: payment.state,
        bytes: bought.bytes,
        price: moneyOf(bought.amountMinor, settings.currency),
        reference: payment.reference,
        authorizationUrl: payment.state === 'payment_link' ? payment.authorizationUrl : null,
        added,
      };
    },
  }),

  jsonRoute({
    operationId: 'getAutoTopUp',
    method: 'get',
    path: '/me/auto-top-up',
    tag: TAG,
    summary: 'The wallet’s auto top-up setting',
    access: 'customer',
    response: autoTopUpView,
    async handler({ caller }) {
      return readAutoTopUp(caller.accountId);
    },
  }),

  jsonRoute({
    operationId: 'setAutoTopUp',
    method: 'put',
    path: '/me/auto-top-up',
    tag: TAG,
    summary: 'Turn auto top-up on (with its figures) or off',
    description:
      'On: when the wallet falls below `thresholdMinor`, the saved card (the one last paid with) is charged `amountMinor`, without asking each time. Off: `{ "enabled": false }`.',
    access: 'customer',
    body: z.discriminatedUnion('enabled', [
      z.object({
        enabled: z.literal(true),
        thresholdMinor: z.number().int().min(0),
        amountMinor: z.number().int().min(1),
      }),
      z.object({ enabled: z.literal(false) }),
    ]),
    response: autoTopUpView,
    async handler({ caller, body }) {
      await setAutoTopUp(
        caller.accountId,
        body.enabled
          ? { thresholdMinor: body.thresholdMinor, amountMinor: body.amountMinor }
          : null,
      );
      return readAutoTopUp(caller.accountId);
    },
  }),

  jsonRoute({
    operationId: 'listInvoices',
    method: 'get',
    path: '/me/invoices',
    tag: TAG,
    summary: 'Invoices and credit notes, newest first',
    description: 'Each payment gets an invoice; each refund to a card a credit note.',
    access: 'customer',
    query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(50) }),
    response: z.object({ invoices: z.array(invoiceSummary) }),
    async handler({ caller, query }) {
      const invoices = await listInvoices(caller.accountId, { limit: query.limit });
      return { invoices: invoices.map(toInvoiceSummary) };
    },
  }),

  jsonRoute({
    operationId: 'getInvoice',
    method: 'get',
    path: '/me/invoices/:number',
    tag: TAG,
    summary: 'One invoice (or credit note)',
    description: 'Another account’s invoice number answers 404, like one that does not exist.',
    access: 'customer',
    params: z.object({ number: invoiceNumber }),
    response: invoiceView,
    async handler({ caller, params }) {
      const invoice = await ownInvoice(caller.accountId, params.number);
      return {
        ...toInvoiceSummary(invoice),
        paymentReference: invoice.paymentReference,
        customer: {
          name: invoice.customer.name ?? null,
          email: invoice.customer.email ?? null,
          phone: invoice.customer.phone ?? null,
        },
        seller: {
          name: invoice.business.name,
          address: invoice.business.address,
          email: invoice.business.email,
          taxId: invoice.business.taxId ?? null,
        },
        vat: { enabled: invoice.vat.enabled, rateBps: invoice.vat.rateBps },
        lines: invoice.lines.map((line) => ({
          description: line.description,
          quantity: line.quantity,
          unitMinor: line.unitMinor,
          amountMinor: line.amountMinor,
        })),
      };
    },
  }),

  fileRoute({
    operationId: 'getInvoicePdf',
    method: 'get',
    path: '/me/invoices/:number/pdf',
    tag: TAG,
    summary: 'One invoice (or credit note) as a PDF',
    description:
      'The same PDF the bots send. Another account’s invoice number answers 404, like one that does not exist.',
    access: 'customer',
    params: z.object({ number: invoiceNumber }),
    file: 'application/pdf',
    async handler({ caller, params }) {
      const invoice = await ownInvoice(caller.accountId, params.number);
      return { body: await renderInvoicePdf(invoice), filename: `${invoice.number}.pdf` };
    },
  }),
];
