/**
 * What the admin-operation tests share: the payments harness (Paystack
 * emulator, payments service, settings store) on a business clock that
 * starts at the real time (the emulator stamps payments with real time, and
 * rate limits have TTL indexes swept by real time), admins and customers, and
 * the admin context each operation takes.
 */
import { randomBytes } from 'node:crypto';
import type { AdminContext, ConfiguredAdmins } from '../../../core/admin/index.js';
import { listAudit, type AuditChannel, type AuditView } from '../../../core/audit.js';
import { activateFromPayment } from '../../../core/subscriptions.js';
import { Account } from '../../../models/account.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { Payment } from '../../../models/payment.js';
import { usePaymentsHarness, type PaymentsHarness } from '../../support/payments.js';

export interface AdminHarness {
  readonly payments: PaymentsHarness;
  /** A new account holding the admin role. */
  admin(): Promise<string>;
  /** A new signed-up customer (email verified, terms accepted), optionally on a plan. */
  customer(options?: { planCode?: string; email?: string }): Promise<Customer>;
  /** A customer who bought `planCode` through a real checkout paid on the emulator. */
  buyer(planCode?: string): Promise<Customer & { reference: string; amountMinor: number }>;
  /** The context an operation by `accountId` through `channel` runs in. */
  ctx(accountId: string, channel?: AuditChannel, configuredAdmins?: ConfiguredAdmins): AdminContext;
}

export interface Customer {
  accountId: string;
  email: string;
}

export function useAdminHarness(): AdminHarness {
  const start = new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString();
  const payments = usePaymentsHarness({ start });
  const { clock } = payments;

  const customer: AdminHarness['customer'] = async (options = {}) => {
    const email = options.email ?? `c${randomBytes(5).toString('hex')}@example.com`;
    const account = await Account.create({
      email,
      emailVerifiedAt: clock.now(),
      termsAcceptedAt: clock.now(),
      termsVersion: '1',
    });
    const accountId = String(account._id);
    if (options.planCode) {
      await activateFromPayment({
        accountId,
        planCode: options.planCode,
        paymentRef: `ref_${randomBytes(6).toString('hex')}`,
        clock,
      });
    }
    return { accountId, email };
  };

  return {
    payments,
    async admin() {
      return String((await Account.create({ roles: ['customer', 'admin'] }))._id);
    },
    customer,
    async buyer(planCode = 'personal') {
      const { accountId, email } = await customer();
      const checkout = await payments.payments.checkout({ accountId, purpose: 'plan', planCode });
      await payments.payAndSettle(checkout.reference);
      const payment = await Payment.findOne({ reference: checkout.reference }).lean().orFail();
      return { accountId, email, reference: checkout.reference, amountMinor: payment.amountMinor };
    },
    ctx(accountId, channel = 'telegram', configuredAdmins) {
      return { actor: { accountId, channel }, clock, configuredAdmins };
    },
  };
}

/** A chat identity of the account (as the bots create them). */
export async function linkChat(
  accountId: string,
  channel: 'telegram' | 'whatsapp',
  externalId: string,
): Promise<void> {
  await ChannelIdentity.create({ accountId, channel, externalId });
}

/** The actor's audit entries, newest first. */
export function auditBy(actor: string): Promise<AuditView[]> {
  return listAudit({ actor, limit: 500 });
}

/** The newest entry of `action` by `actor`, or undefined. */
export async function lastAudit(actor: string, action: string): Promise<AuditView | undefined> {
  return (await auditBy(actor)).find((entry) => entry.action === action);
}
