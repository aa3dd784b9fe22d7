/**
 * The payment duties that must run even when nobody calls: processing stored
 * webhook events that are due again, the re-verification safety net (which also
 * resumes half-finished fulfilments and refunds), and ending trials that are up.
 * Each job calls one core function; each is idempotent.
 */
import type { Agenda } from 'agenda';
import type { PaymentsService } from '../core/payments/index.js';

export const paymentJobNames = {
  processWebhooks: 'payments.process-due-webhooks',
  reverify: 'payments.reverify-pending',
  finishTrials: 'payments.finish-due-trials',
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
  await agenda.every('1 minute', paymentJobNames.processWebhooks);
  await agenda.every('5 minutes', paymentJobNames.reverify);
  await agenda.every('5 minutes', paymentJobNames.finishTrials);
}
