/**
 * Payments for admins: the latest ones (all, failed, or flagged: a success
 * that did not match, or a paid payment waiting for a decision), one payment
 * with what is left to refund, and refunds, which go through the one refund
 * path (core/payments/refunds.ts) that audits them and moves money once.
 */
import { DomainError } from '../../lib/errors.js';
import type { Currency } from '../../lib/money.js';
import { Payment, type PaymentPurpose, type PaymentStatus } from '../../models/payment.js';
import type { RefundMethod } from '../../models/refund.js';
import type { PaymentsService, RefundOutcome } from '../payments/index.js';
import { checkRequestId, recordView, requireAdmin, type AdminContext, entry } from './context.js';
import { recordAudit } from '../audit.js';
import { paymentLine, type PaymentLine } from './users.js';

export const paymentFilters = ['recent', 'failed', 'flagged'] as const;
export type PaymentFilter = (typeof paymentFilters)[number];

const MAX_LIST = 50;

export interface AdminPaymentLine extends PaymentLine {
  accountId: string;
  email: string;
  flagReason: string | null;
}

interface StoredPayment {
  reference: string;
  accountId: { toHexString(): string };
  email: string;
  purpose: PaymentPurpose;
  planCode?: string | null;
  amountMinor: number;
  refundedMinor?: number | null;
  currency: Currency;
  status: PaymentStatus;
  needsReviewAt?: Date | null;
  flagReason?: string | null;
  paidAt?: Date | null;
  openedAt: Date;
}

function adminLine(payment: StoredPayment): AdminPaymentLine {
  return {
    ...paymentLine(payment),
    accountId: payment.accountId.toHexString(),
    email: payment.email,
    flagReason: payment.flagReason ?? null,
  };
}

/** The latest payments of a kind, newest first; recorded as `payments.viewed`. */
export async function listPayments(
  ctx: AdminContext,
  input: { filter?: PaymentFilter; limit?: number } = {},
): Promise<AdminPaymentLine[]> {
  await requireAdmin(ctx, 'payments.list');
  const filter = input.filter ?? 'recent';
  if (!(paymentFilters as readonly string[]).includes(filter)) {
    throw new DomainError('VALIDATION_FAILED', `Show one of: ${paymentFilters.join(', ')}.`, {
      details: { field: 'filter' },
    });
  }
  const limit = Math.min(Math.max(Math.trunc(input.limit ?? 10), 1), MAX_LIST);
  const query: Record<string, unknown> =
    filter === 'failed'
      ? { status: { $in: ['failed', 'abandoned'] } }
      : filter === 'flagged'
        ? { $or: [{ status: 'flagged' }, { needsReviewAt: { $exists: true } }] }
        : {};
  const payments = await Payment.find(query)
    .sort({ createdAt: -1, _id: -1 })
    .limit(limit)
    .lean<StoredPayment[]>();
  await recordView(ctx, 'payments.viewed', { kind: 'payments', id: filter }, { limit });
  return payments.map(adminLine);
}

/** One payment with what is left to refund (the refund's confirmation shows it); recorded as `payment.viewed`. */
export async function describePayment(
  ctx: AdminContext,
  reference: string,
): Promise<AdminPaymentLine & { refundableMinor: number }> {
  await requireAdmin(ctx, 'payments.view');
  const payment = await Payment.findOne({ reference: reference.trim() }).lean<StoredPayment>();
  if (!payment) {
    throw new DomainError('NOT_FOUND', `There is no payment "${reference}".`, {
      details: { reference },
    });
  }
  const line = adminLine(payment);
  await recordView(ctx, 'payment.viewed', { kind: 'payment', id: payment.reference });
  return {
    ...line,
    refundableMinor: payment.status === 'paid' ? line.amountMinor - line.refundedMinor : 0,
  };
}

export interface AdminRefundInput {
  paymentReference: string;
  /** Default: everything still refundable. */
  amountMinor?: number;
  method: RefundMethod;
  reason: string;
  /** One per admin command: a repeat is the same refund. */
  requestId: string;
  /** Also stop, now, the plan the payment bought. */
  endPlan?: boolean;
}

/**
 * Refunds (part of) a payment through PaymentsService.refundPayment, which
 * records `refund.requested`; a refusal (more than is left, money already
 * spent) is recorded here as `refund.requested.failed`.
 */
export async function refundPayment(
  ctx: AdminContext,
  payments: PaymentsService,
  input: AdminRefundInput,
): Promise<RefundOutcome> {
  const admin = await requireAdmin(ctx, 'refund');
  const requestId = checkRequestId(input.requestId);
  const reason = input.reason.trim();
  if (reason === '') {
    throw new DomainError('VALIDATION_FAILED', 'A refund needs a reason.', {
      details: { field: 'reason' },
    });
  }
  try {
    return await payments.refundPayment({
      adminId: admin.accountId,
      channel: ctx.actor.channel,
      requestId,
      paymentReference: input.paymentReference.trim(),
      method: input.method,
      reason,
      ...(input.amountMinor === undefined ? {} : { amountMinor: input.amountMinor }),
      ...(input.endPlan === undefined ? {} : { endPlan: input.endPlan }),
    });
  } catch (error) {
    const failure = entry(
      ctx,
      'refund.requested.failed',
      { kind: 'payment', id: input.paymentReference.trim() },
      {
        amountMinor: input.amountMinor ?? null,
        method: input.method,
        reason,
        requestId,
        error: error instanceof DomainError ? error.code : 'INTERNAL',
        message: error instanceof DomainError ? error.message : 'unexpected error',
      },
    );
    await recordAudit(failure, { clock: ctx.clock }).catch(() => undefined);
    throw error;
  }
}
