/**
 * Pay as you go: the wallet pays each connected hour when it starts (the
 * gateway debits it, proxy/access-controller.ts, once per account and hour
 * under the key below). This file names that key and answers "what has it
 * cost so far?" for the bots and the API.
 */
import { formatMoney, type Currency } from '../lib/money.js';
import { LedgerEntry } from '../models/ledger-entry.js';
import { toAccountId, type AccountId } from './account-id.js';
import { hourStart } from './usage.js';

/** The ledger key of the charge for the hour starting at `hour` (retries add `:retryN`). */
export function paygHourKey(accountId: AccountId, hour: Date): string {
  return `payg:${String(accountId)}:${hour.toISOString()}`;
}

export interface PaygCostSoFar {
  /** Charged for the hour containing `now` (0 when not connected in it yet). */
  hourMinor: number;
  /** Charged since 00:00 UTC today, this hour included. */
  todayMinor: number;
  /** Connected hours charged today. */
  hoursToday: number;
  currency: Currency | null;
  /** "₦300.00 today (2 connected hours), ₦150.00 this hour". */
  summary: string;
}

/** What pay as you go has cost the account this hour and today (UTC), from the ledger. */
export async function paygCostSoFar(accountId: AccountId, now: Date): Promise<PaygCostSoFar> {
  const account = toAccountId(accountId);
  const dayStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const prefix = `payg:${String(account)}:${dayStart.toISOString().slice(0, 10)}`;
  const entries = await LedgerEntry.find(
    {
      accountId: account,
      kind: 'debit',
      status: 'applied',
      idempotencyKey: { $regex: `^${escapeRegex(prefix)}` },
    },
    { idempotencyKey: 1, amountMinor: 1, currency: 1 },
  ).lean<{ idempotencyKey: string; amountMinor: number; currency: Currency }[]>();
  const thisHour = paygHourKey(account, hourStart(now));
  let hourMinor = 0;
  let todayMinor = 0;
  // Debits are stored negative or positive depending on the ledger's sign
  // convention; a charge is what left the wallet.
  for (const entry of entries) {
    const charged = Math.abs(entry.amountMinor);
    todayMinor += charged;
    if (entry.idempotencyKey === thisHour || entry.idempotencyKey.startsWith(`${thisHour}:`)) {
      hourMinor += charged;
    }
  }
  const currency = entries[0]?.currency ?? null;
  const money = (amountMinor: number): string =>
    currency ? formatMoney({ amountMinor, currency }) : '0';
  const hoursToday = entries.length;
  return {
    hourMinor,
    todayMinor,
    hoursToday,
    currency,
    summary:
      hoursToday === 0
        ? 'Nothing charged today.'
        : `${money(todayMinor)} today (${hoursToday} connected hour${hoursToday === 1 ? '' : 's'}), ${money(hourMinor)} this hour.`,
  };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
