/**
 * `/refund` goes through the one refund path (PaymentsService.refundPayment)
 * against the Paystack emulator: an admin named only in configuration can
 * refund (core/admin gives the account the role the refund path asks for),
 * a repeated request is one refund, one that takes more than is left is
 * refused and the refusal is on record, and a customer cannot refund at all.
 */
import { describe, expect, it } from '@jest/globals';
import { refundPayment } from '../../../core/admin/index.js';
import { listAudit } from '../../../core/audit.js';
import { getWallet } from '../../../core/wallet.js';
import { Refund } from '../../../models/refund.js';
import { useTestDatabase } from '../../support/database.js';
import { lastAudit, linkChat, useAdminHarness } from './harness.js';

useTestDatabase();
const h = useAdminHarness();

describe('an admin refund', () => {
  it('by an admin from configuration reaches the wallet once and is audited', async () => {
    const buyer = await h.buyer('personal');
    const { accountId: admin } = await h.customer();
    await linkChat(admin, 'whatsapp', '2348033334444');
    const ctx = h.ctx(admin, 'whatsapp', { telegramIds: [], whatsappNumbers: ['2348033334444'] });
    const input = {
      paymentReference: buyer.reference,
      amountMinor: 500_000,
      method: 'wallet' as const,
      reason: 'outage on 3 May',
      requestId: 'chat-abc123',
    };

    const outcome = await refundPayment(ctx, h.payments.payments, input);
    expect(outcome).toMatchObject({ state: 'processed', method: 'wallet', amountMinor: 500_000 });
    const repeat = await refundPayment(ctx, h.payments.payments, input);
    expect(repeat.refundId).toBe(outcome.refundId);
    expect(await Refund.countDocuments({ paymentReference: buyer.reference })).toBe(1);
    expect((await getWallet(buyer.accountId)).balanceMinor).toBe(500_000);

    const entries = await listAudit({ target: { kind: 'payment', id: buyer.reference } });
    expect(entries).toEqual([
      expect.objectContaining({
        actor: admin,
        channel: 'whatsapp',
        action: 'refund.requested',
        details: expect.objectContaining({
          amountMinor: 500_000,
          method: 'wallet',
          reason: 'outage on 3 May',
        }),
      }),
    ]);
    expect(await lastAudit(admin, 'admin.bootstrapped')).toBeDefined();
  });

  it('refuses more than is left, with the refusal on record', async () => {
    const buyer = await h.buyer('starter');
    const admin = await h.admin();
    const ctx = h.ctx(admin);
    const refund = (amountMinor: number, requestId: string) =>
      refundPayment(ctx, h.payments.payments, {
        paymentReference: buyer.reference,
        amountMinor,
        method: 'wallet',
        reason: 'goodwill',
        requestId,
      });
    await refund(100_000, 'r-part');
    await expect(refund(buyer.amountMinor - 50_000, 'r-big')).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'EXCEEDS_REFUNDABLE' },
    });
    expect(await lastAudit(admin, 'refund.requested.failed')).toMatchObject({
      target: { kind: 'payment', id: buyer.reference },
      details: { error: 'CONFLICT', amountMinor: buyer.amountMinor - 50_000, requestId: 'r-big' },
    });
    await expect(refund(buyer.amountMinor + 1, 'r-huge')).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    expect((await getWallet(buyer.accountId)).balanceMinor).toBe(100_000);
  });

  it('is refused to a customer, audited, with no refund recorded', async () => {
    const buyer = await h.buyer('starter');
    const { accountId } = await h.customer();
    await expect(
      refundPayment(h.ctx(accountId), h.payments.payments, {
        paymentReference: buyer.reference,
        method: 'card',
        reason: 'please',
        requestId: 'r-x',
      }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(await Refund.countDocuments({ paymentReference: buyer.reference })).toBe(0);
    expect(await lastAudit(accountId, 'admin.refused')).toMatchObject({
      details: { attempted: 'refund' },
    });
  });
});
