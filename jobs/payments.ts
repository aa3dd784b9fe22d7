/**
 * The payment duties that must run even when nobody calls: processing stored
 * webhook events that are due again, the re-verification safety net (which also
 * resumes half-finished fulfilments and refunds), ending trials that are up, and
 * renewals with dunning (core/payments/renewals.ts), and auto top-ups.
 * Each job calls one core function; each is idempotent.
 */
import type { Agenda } from 'agenda';
import type { PaymentsService } from '../core/payments/index.js';

export const paymentJobNames = {
  processWebhooks: 'payments.process-due-webhooks',
  reverify: 'payments.reverify-pending',
  finishTrials: 'payments.finish-due-trials',
  renewals: 'payments.renewals-and-dunning',
  autoTopUps: 'payments.auto-topups',
} as const;

export async function registerPaymentJobs(
  agenda: Agenda,
  payments: PaymentsService,
): Promise<void> {
  agenda.define(paymentJobNames.processWebhooks, async () => {
    await payments.processDueWebhooks({ limit: 500 });
  });
  agenda.define(paymentJobNames.reverify, async () => {
    await payments.reverifyPendingPayments();
  });
  agenda.define(paymentJobNames.finishTrials, async () => {
    await payments.finishDueTrials();
  });
  agenda.define(paymentJobNames.renewals, async () => {
    await payments.runRenewals();
  });
  agenda.define(paymentJobNames.autoTopUps, async () => {
    await payments.runAutoTopUps();
  });
  await agenda.every('1 minute', paymentJobNames.processWebhooks);
  await agenda.every('5 minutes', paymentJobNames.reverify);
  await agenda.every('5 minutes', paymentJobNames.finishTrials);
  await agenda.every('5 minutes', paymentJobNames.renewals);
  await agenda.every('5 minutes', paymentJobNames.autoTopUps);
}
