/**
 * A deploy loses nothing: the api role's stop() returns only after the webhook
 * events this process accepted have been processed (or rescheduled).
 */
import { describe, expect, it } from '@jest/globals';
import { useTestDatabase } from '../../support/database.js';
import { startPaymentsApi, usePaymentsHarness } from '../../support/payments.js';
import { createLogger } from '../../../lib/logger.js';
import { WebhookEvent } from '../../../models/webhook-event.js';

useTestDatabase();
const h = usePaymentsHarness();

describe('stopping the api role', () => {
  it('waits for the webhook events it accepted before it returns', async () => {
    const logger = createLogger({ level: 'silent' });
    const api = await startPaymentsApi({ payments: h.payments, logger, webhookAllowedIps: [] });
    const customer = await h.newCustomer();
    const checkout = await h.payments.checkout({
      accountId: String(customer._id),
      purpose: 'plan',
      planCode: 'starter',
    });

    // Paystack's verify hangs, so processing is still running when the answer has gone out.
    h.emulator.failNextRequests('verify', { hang: true });
    await h.emulator.pay(checkout.reference, {
      deliver: { url: `http://127.0.0.1:${api.address().port}/webhooks/paystack` },
    });
    await api.stop();

    const event = await WebhookEvent.findOne({ eventKey: `charge.success:${checkout.reference}` });
    expect(event).not.toBeNull();
    expect(event?.status).not.toBe('processing');
    expect(event?.attempts).toBe(1);
  });
});
