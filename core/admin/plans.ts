/**
 * The plan catalogue for admins: every plan (on sale or not) with its
 * version, and the two edits chat offers, the price and the data quota.
 * core/plans.ts applies an edit to new subscriptions only (running ones keep
 * what they bought until they renew) and bumps the version; an edit made
 * against a version someone else changed since is refused with CONFLICT.
 */
import { DomainError } from '../../lib/errors.js';
import type { Currency } from '../../lib/money.js';
import type { PlanRecord } from '../../models/plan.js';
import { getPlan, listPlans, updatePlan, type PlanChanges } from '../plans.js';
import { audited, entry, recordView, requireAdmin, type AdminContext } from './context.js';

/** What an admin changes: the price (the hourly rate for pay as you go), or the data per period. */
export type PlanEdit =
  { field: 'price'; amountMinor: number; currency: Currency } | { field: 'quota'; bytes: number };

/** Every plan, in catalogue order; recorded as `plans.viewed`. */
export async function listPlansForAdmin(ctx: AdminContext): Promise<PlanRecord[]> {
  await requireAdmin(ctx, 'plans.list');
  const plans = await listPlans();
  await recordView(ctx, 'plans.viewed', { kind: 'plans', id: '*' });
  return plans;
}

function changesFor(
  plan: PlanRecord,
  edit: PlanEdit,
): { changes: PlanChanges; from: number | null } {
  if (edit.field === 'price') {
    if (!Number.isSafeInteger(edit.amountMinor) || edit.amountMinor < 0) {
      throw new DomainError('VALIDATION_FAILED', 'A price is a whole amount, 0 or more.', {
        details: { field: 'amountMinor' },
      });
    }
    switch (plan.kind) {
      case 'trial':
        throw new DomainError(
          'VALIDATION_FAILED',
          'The trial has no price: its deposit is the setting trialDepositMinor (/settings).',
          { details: { field: 'price' } },
        );
      case 'payg': {
        const rates = plan.payg?.rates ?? [];
        const old = rates.find((rate) => rate.currency === edit.currency);
        const rate = { ...old, currency: edit.currency, hourlyRateMinor: edit.amountMinor };
        return {
          changes: {
            payg: {
              rates: old
                ? rates.map((r) => (r.currency === edit.currency ? rate : r))
                : [...rates, rate],
            },
          },
          from: old?.hourlyRateMinor ?? null,
        };
      }
      case 'recurring': {
        const old = plan.prices.find((price) => price.currency === edit.currency);
        const price = { currency: edit.currency, amountMinor: edit.amountMinor };
        return {
          changes: {
            prices: old
              ? plan.prices.map((p) => (p.currency === edit.currency ? price : p))
              : [...plan.prices, price],
          },
          from: old?.amountMinor ?? null,
        };
      }
    }
  }
  if (!Number.isSafeInteger(edit.bytes) || edit.bytes < 1) {
    throw new DomainError('VALIDATION_FAILED', 'A data quota is a whole number of bytes.', {
      details: { field: 'bytes' },
    });
  }
  if (!plan.quota) {
    throw new DomainError('VALIDATION_FAILED', `The ${plan.name} plan has no data quota.`, {
      details: { field: 'quota' },
    });
  }
  const quota = { ...plan.quota, bytes: edit.bytes };
  // A trial's data allowance and its quota are one figure.
  const trial = plan.trial ? { ...plan.trial, dataBytes: edit.bytes } : undefined;
  return {
    changes: trial ? { quota, trial } : { quota },
    from: plan.quota.bytes,
  };
}

/**
 * Changes a plan's price or quota for new subscriptions; recorded as
 * `plan.edited` with the old and new figures. With `expectedVersion` (the
 * version the admin looked at), a plan changed since is a CONFLICT.
 */
export async function editPlan(
  ctx: AdminContext,
  input: { code: string; edit: PlanEdit; expectedVersion?: number },
): Promise<PlanRecord> {
  await requireAdmin(ctx, 'plans.edit');
  const plan = await getPlan(input.code);
  const { changes, from } = changesFor(plan, input.edit);
  const to = input.edit.field === 'price' ? input.edit.amountMinor : input.edit.bytes;
  return audited(
    ctx,
    entry(
      ctx,
      'plan.edited',
      { kind: 'plan', id: plan.code },
      {
        field: input.edit.field,
        ...(input.edit.field === 'price' ? { currency: input.edit.currency } : {}),
        from,
        to,
        version: plan.version,
      },
    ),
    () =>
      updatePlan(plan.code, changes, {
        actor: ctx.actor.accountId,
        clock: ctx.clock,
        ...(input.expectedVersion === undefined ? {} : { expectedVersion: input.expectedVersion }),
      }),
  );
}
