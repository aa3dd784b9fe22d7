import { describe, expect, it } from '@jest/globals';
import { useTestDatabase } from '../../support/database.js';
import { usePaymentsHarness } from '../../support/payments.js';
import { WebhookEvent } from '../../../models/webhook-event.js';

useTestDatabase();
const h = usePaymentsHarness({ webhookAllowedIps: ['paystack'] });

describe('webhook sender allow-list', () => {
  it("refuses a correctly signed event from an address that is not Paystack's", async () => {
    const [delivery] = await h.emulator.sendEvent('charge.success', { reference: 'r1' });
    expect(delivery?.status).toBe(403);
    expect(await WebhookEvent.countDocuments()).toBe(0);
  });
});
