/**
 * The money flows, bound to their context once at start-up: checkout,
 * fulfilment, Paystack webhooks, trial deposits, refunds, cancellations, and
 * the re-verification safety net. The api role, the bots and the jobs call these.
 */
import { EventEmitter } from 'node:events';
import { createCheckout, type Checkout, type CheckoutRequest } from './checkout.js';
import { fulfilPayment, type FulfilmentOutcome } from './fulfilment.js';
import {
  processDueWebhookEvents,
  processWebhookEvent,
  receivePaystackWebhook,
  type ClaimedEvent,
  type ProcessOutcome,
  type ReceiveResult,
} from './webhooks.js';
import { finishDueTrials, refundDeposit } from './trial.js';
import {
  listRefundsOfPayment,
  refundPayment,
  resumeRefunds,
  type RefundOutcome,
  type RefundView,
  type AdminRefundRequest,
} from './refunds.js';
import {
  confirmCancellation,
  quoteCancellation,
  type CancellationOutcome,
  type CancellationQuote,
} from '../cancellation.js';
import type { RefundMethod } from '../../models/refund.js';
import {
  confirmPlanChange,
  quotePlanChange,
  type PlanChangeOffer,
  type PlanChangeOutcome,
} from './plan-change.js';
import { renewOne, runRenewals, type RenewalOutcome } from './renewals.js';
import { buyDataTopUp, type DataTopUpOutcome } from './data-topup.js';
import { runAutoTopUps, type AutoTopUpOutcome } from './auto-topup.js';
import { reverifyPendingPayments, type ReverifyOptions, type ReverifyReport } from './reverify.js';
import type { PaymentsContext } from './context.js';

export type { PaymentsContext } from './context.js';
export type { Checkout, CheckoutRequest } from './checkout.js';
export type { FulfilmentOutcome } from './fulfilment.js';
export type { AdminRefundRequest, RefundOutcome, RefundView } from './refunds.js';
export type { CancellationOutcome, CancellationQuote } from '../cancellation.js';

export type { ReverifyReport } from './reverify.js';
export type { PlanChangeOffer, PlanChangeOutcome } from './plan-change.js';
export type { RenewalOutcome } from './renewals.js';
export type { DataTopUpOutcome } from './data-topup.js';
export type { AutoTopUpOutcome } from './auto-topup.js';
export { setAutoTopUp } from './auto-topup.js';
export { assertTrialAllowed } from './trial.js';

export interface PaymentsEvents {
  /** A stored webhook event was handled (or will be retried). */
  'webhook.processed': [eventId: string, outcome: ProcessOutcome];
}

export class PaymentsService {
  /** Lets callers (tests, metrics) wait for background processing without polling. */
  readonly events = new EventEmitter<PaymentsEvents>();

  constructor(
    private readonly ctx: PaymentsContext,
    private readonly secretKey: string,
  ) {}

  checkout(request: CheckoutRequest): Promise<Checkout> {
    return createCheckout(this.ctx, request);
  }

  fulfil(reference: string): Promise<FulfilmentOutcome> {
    return fulfilPayment(this.ctx, reference);
  }

  /**
   * Verifies and stores a webhook; the caller answers with `status` at once.
   * With `claim`, a new event is stored claimed by the caller, who passes
   * `result.claimed` to processWebhook next.
   */
  receiveWebhook(
    rawBody: Buffer,
    signature: string | undefined,
    options: { claim?: boolean } = {},
  ): Promise<ReceiveResult> {
    return receivePaystackWebhook(this.ctx, {
      rawBody,
      signature,
      secretKey: this.secretKey,
      ...options,
    });
  }

  /** Handles one stored event (by id, or as claimed when received) and announces it on `events`. */
  async processWebhook(target: string | ClaimedEvent): Promise<ProcessOutcome> {
    const outcome = await processWebhookEvent(this.ctx, target);
    const eventId = typeof target === 'string' ? target : target._id.toHexString();
    this.events.emit('webhook.processed', eventId, outcome);
    return outcome;
  }

  processDueWebhooks(options?: { limit?: number }): Promise<number> {
    return processDueWebhookEvents(this.ctx, options);
  }

  refundDeposit(
    reference: string,
    options: { reason: string; method?: RefundMethod },
  ): Promise<RefundOutcome> {
    return refundDeposit(this.ctx, reference, options);
  }

  /**
   * An admin refunds all or part of a payment, to the card or the wallet, with
   * a reason; audited (core/payments/refunds.ts). Refused with CONFLICT
   * (`details.reason` EXCEEDS_REFUNDABLE, ALREADY_SPENT, NOTHING_LEFT) and
   * FORBIDDEN for a non-admin.
   */
  refundPayment(request: AdminRefundRequest): Promise<RefundOutcome> {
    return refundPayment(this.ctx, request);
  }

  /** A payment's refunds, oldest first. */
  listRefunds(paymentReference: string): Promise<RefundView[]> {
    return listRefundsOfPayment(paymentReference);
  }

  /** Moves on refunds left behind (re-verification runs it too); returns how many it moved. */
  resumeRefunds(): Promise<number> {
    return resumeRefunds(this.ctx);
  }

  /** A stored quote for cancelling the account's plan (core/cancellation.ts). */
  quoteCancellation(input: {
    accountId: string;
    when: 'now' | 'period_end';
  }): Promise<CancellationQuote> {
    return quoteCancellation(this.ctx, input);
  }

  /** Carries out a cancellation quote; a refund to the card goes through Paystack. */
  confirmCancellation(input: { accountId: string; quoteId: string }): Promise<CancellationOutcome> {
    return confirmCancellation(this.ctx, input);
  }

  finishDueTrials(): Promise<{ ended: number }> {
    return finishDueTrials(this.ctx);
  }

  reverifyPendingPayments(options?: ReverifyOptions): Promise<ReverifyReport> {
    return reverifyPendingPayments(this.ctx, options);
  }

  /** A stored quote for moving the account's plan (core/payments/plan-change.ts). */
  quotePlanChange(input: { accountId: string; toPlanCode: string }): Promise<PlanChangeOffer> {
    return quotePlanChange(this.ctx, input);
  }

  confirmPlanChange(input: { accountId: string; quoteId: string }): Promise<PlanChangeOutcome> {
    return confirmPlanChange(this.ctx, input);
  }

  /** One renewal and dunning pass (core/payments/renewals.ts); the jobs role runs it. */
  runRenewals(): Promise<RenewalOutcome[]> {
    return runRenewals(this.ctx);
  }

  /** One auto top-up pass over low PAYG wallets (core/payments/auto-topup.ts); the jobs role runs it. */
  runAutoTopUps(): Promise<AutoTopUpOutcome[]> {
    return runAutoTopUps(this.ctx);
  }

  /** Buys one extra-data pack for the current quota window (core/payments/data-topup.ts). */
  buyDataTopUp(input: { accountId: string; requestId?: string }): Promise<DataTopUpOutcome> {
    return buyDataTopUp(this.ctx, input);
  }

  /** The renewal step due now for one subscription (an admin's "retry the renewal now"). */
  renewSubscription(subscriptionId: string): Promise<RenewalOutcome> {
    return renewOne(this.ctx, subscriptionId);
  }
}
