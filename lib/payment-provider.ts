import type { Currency } from './money.js';

/**
 * What `core/` knows of the payment provider. It is handed over at start-up
 * (the Paystack client in production and tests, the same client pointed at the
 * emulator in a sandbox); core never imports `lib/paystack` itself.
 *
 * Amounts are integer minor units (kobo, pesewas, cents): Paystack's `amount`
 * is already in the subunit, so nothing is multiplied or divided here.
 *
 * ## Paid, not paid, or unknown
 *
 * Every call ends in one of three ways, and billing must treat them apart:
 *
 * - **A value.** Paystack answered. For money-moving calls the value says
 *   what happened: `ChargeResult.status === 'success'` is paid; `'failed'` is
 *   definitely not paid; any other status is *not paid yet* (the customer must
 *   act, see `requiresAction`, or Paystack is still working, `'pending'`):
 *   verify the reference later or wait for the `charge.success` webhook.
 * - **`DomainError('PAYMENT_REJECTED')`.** Paystack refused the request
 *   itself (4xx: invalid key, duplicate reference, unknown authorization,
 *   validation). The request had no effect, so nothing was charged or
 *   refunded by *this* call. `details.providerMessage` holds Paystack's own
 *   words, `details.status` the HTTP status, `details.kind` is
 *   `'unauthorized'` (401, a configuration problem: retrying will not help) or
 *   `'rejected'`. One subtlety: a `Duplicate Transaction Reference` refusal
 *   (`details.providerCode === 'duplicate_reference'`) after an earlier
 *   attempt with the same reference ended in `UPSTREAM_FAILED` means that
 *   earlier attempt did reach Paystack: verify the reference to learn its fate.
 * - **`DomainError('UPSTREAM_FAILED')`.** We do not know. A timeout, a network
 *   error, a 5xx, a 429 or an answer we could not read: the request may or
 *   may not have been applied. `details` is `{ kind, status?, retryable: true,
 *   endpoint }` with `kind` one of `'timeout' | 'network' | 'server' |
 *   'rate_limited' | 'invalid_response'`. Never conclude "not paid" from it:
 *   resolve it with `verifyTransaction(reference)` (our own reference is sent
 *   with every initialize and charge for exactly this reason), or retry the
 *   same call with the same reference.
 */
export interface PaymentProvider {
  /** Starts a checkout (https://paystack.com/docs/api/transaction/#initialize). */
  initializeTransaction(input: InitializeTransactionInput): Promise<InitializedTransaction>;
  /**
   * Reads the transaction as Paystack sees it now
   * (https://paystack.com/docs/api/transaction/#verify). A transaction the
   * customer has not paid yet verifies as `'abandoned'`, not as an error.
   */
  verifyTransaction(reference: string): Promise<VerifiedTransaction>;
  /**
   * Charges a saved reusable authorization
   * (https://paystack.com/docs/payments/recurring-charges/). A declined card is
   * a value (`status: 'failed'`), not an error.
   */
  chargeAuthorization(input: ChargeAuthorizationInput): Promise<ChargeResult>;
  /** Refunds all or part of a paid transaction (https://paystack.com/docs/api/refund/#create). */
  refund(input: RefundInput): Promise<RefundResult>;
  /**
   * The refunds of one transaction, newest first
   * (https://paystack.com/docs/api/refund/#list). A refund whose request may have
   * reached Paystack before our process died is found here instead of being made twice.
   */
  listRefunds(input: { reference: string }): Promise<RefundResult[]>;
  /** Creates (or, for a known email, returns) a Paystack customer (https://paystack.com/docs/api/customer/#create). */
  createCustomer(input: CreateCustomerInput): Promise<CreatedCustomer>;
}

export interface InitializeTransactionInput {
  /** Our unique reference (`newReference()`): letters, digits, `-`, `.`, `=`. */
  reference: string;
  amountMinor: number;
  currency: Currency;
  email: string;
  /** Where the customer's browser returns with `?trxref=REF&reference=REF`. */
  callbackUrl: string;
  metadata?: Record<string, unknown>;
  /** Paystack channels to offer, e.g. `['card']`; default: the integration's channels. */
  channels?: string[];
}

export interface InitializedTransaction {
  /** The checkout page to send the customer to. */
  authorizationUrl: string;
  accessCode: string;
  reference: string;
}

export const TRANSACTION_STATUSES = [
  'success',
  'failed',
  'abandoned',
  'pending',
  'ongoing',
  'processing',
  'queued',
  'reversed',
] as const;
/** Only `'success'` means paid; `'reversed'` was paid and fully refunded or charged back. */
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];

/** A card (or bank) authorization Paystack returned with a transaction. */
export interface SavedAuthorization {
  /** Secret-ish: whoever holds it with our key can charge the card. Never log it. */
  authorizationCode: string;
  /** The card's fingerprint: the same card on any account has the same signature. */
  signature: string | null;
  last4: string | null;
  expMonth: string | null;
  expYear: string | null;
  cardType: string | null;
  bank: string | null;
  brand: string | null;
  /** Only a reusable authorization can be charged again. */
  reusable: boolean;
  channel: string | null;
}

export interface TransactionCustomer {
  email: string;
  customerCode: string;
}

export interface VerifiedTransaction {
  /** Paystack's numeric transaction id. */
  id: number;
  reference: string;
  status: TransactionStatus;
  amountMinor: number;
  /** As Paystack reports it; compare it with the currency asked for before fulfilling. */
  currency: string;
  paidAt: Date | null;
  channel: string | null;
  gatewayResponse: string | null;
  customer: TransactionCustomer;
  authorization: SavedAuthorization | null;
  /** The metadata given at initialize or charge time (decoded when Paystack returns it as a JSON string). */
  metadata: Record<string, unknown> | null;
}

export interface ChargeAuthorizationInput {
  /** Our unique reference: retrying with the same one cannot charge twice. */
  reference: string;
  amountMinor: number;
  currency: Currency;
  /** Must be the email of the customer the authorization belongs to. */
  email: string;
  authorizationCode: string;
  metadata?: Record<string, unknown>;
}

export const CHARGE_STATUSES = [
  ...TRANSACTION_STATUSES,
  'send_otp',
  'send_pin',
  'send_phone',
  'send_birthday',
  'send_address',
  'open_url',
  'pay_offline',
  'paused',
] as const;
export type ChargeStatus = (typeof CHARGE_STATUSES)[number];

/** Statuses in which nothing more happens until the customer acts. */
const ACTION_STATUSES: ReadonlySet<ChargeStatus> = new Set([
  'send_otp',
  'send_pin',
  'send_phone',
  'send_birthday',
  'send_address',
  'open_url',
  'pay_offline',
  'paused',
]);

export function isActionRequired(status: ChargeStatus, paused: boolean): boolean {
  return paused || ACTION_STATUSES.has(status);
}

export interface ChargeResult extends Omit<VerifiedTransaction, 'status'> {
  /**
   * `'success'` is paid, `'failed'` is not paid (declined); anything else is
   * not paid *yet*: see `requiresAction`.
   */
  status: ChargeStatus;
  /** Paystack's `paused` flag: the charge waits for the customer to authorize it (2FA). */
  paused: boolean;
  /**
   * True when the customer must act before money moves (OTP, PIN, a bank
   * page, an offline step, a paused charge). Billing should then stop
   * retrying and send the customer a payment link instead.
   */
  requiresAction: boolean;
  /** Where the customer can complete the charge, when Paystack gave one (`open_url`, paused charges). */
  actionUrl: string | null;
}

export interface RefundInput {
  /** The reference of the transaction to refund. */
  reference: string;
  /** Part of the transaction to refund; omitted refunds what remains. */
  amountMinor?: number;
  currency: Currency;
  merchantNote?: string;
  customerNote?: string;
}

export const REFUND_STATUSES = [
  'pending',
  'processing',
  'processed',
  'failed',
  'needs-attention',
] as const;
/**
 * `'processed'` means the money went back; `'failed'` means it did not;
 * `'needs-attention'` needs the customer's bank details (an operator's job).
 */
export type RefundStatus = (typeof REFUND_STATUSES)[number];

export interface RefundResult {
  /** Paystack's refund id. */
  id: number;
  status: RefundStatus;
  amountMinor: number;
  currency: string;
  transactionReference: string;
  /** The note we sent with the refund (Atlantic tags its refunds there), when Paystack returns it. */
  merchantNote: string | null;
}

export interface CreateCustomerInput {
  email: string;
  firstName?: string;
  lastName?: string;
  phone?: string;
  metadata?: Record<string, unknown>;
}

export interface CreatedCustomer {
  customerCode: string;
  id: number;
  email: string;
}

/** `details` of an `UPSTREAM_FAILED` error raised by a payment provider. */
export type UpstreamFailureDetails = {
  kind: 'timeout' | 'network' | 'server' | 'rate_limited' | 'invalid_response';
  status?: number;
  retryable: true;
  endpoint: string;
};

/** `details` of a `PAYMENT_REJECTED` error raised by a payment provider. */
export type PaymentRejectedDetails = {
  kind: 'unauthorized' | 'rejected';
  status: number;
  /** Paystack's own `message`, e.g. "Duplicate Transaction Reference". */
  providerMessage: string;
  /** Paystack's `code`, when it sent one (e.g. `duplicate_reference`). */
  providerCode?: string;
  retryable: false;
  endpoint: string;
};
