/**
 * What the Paystack emulator remembers, and how it shows it the way Paystack
 * does (snake_case objects shaped after the OpenAPI description in
 * github.com/PaystackOSS/openapi: VerifyResponse, ChargeAuthorizationResponse,
 * RefundCreateResponse, CustomerCreateResponse, and the webhook payloads of
 * https://paystack.com/docs/payments/webhooks/).
 */
import { randomBytes } from 'node:crypto';

import type { ChargeStatus, RefundStatus } from '../../payment-provider.js';

export interface EmulatedCustomer {
  id: number;
  customerCode: string;
  email: string;
  firstName: string | null;
  lastName: string | null;
  phone: string | null;
  metadata: Record<string, unknown> | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface EmulatedAuthorization {
  authorizationCode: string;
  bin: string;
  last4: string;
  expMonth: string;
  expYear: string;
  cardType: string;
  bank: string;
  brand: string;
  reusable: boolean;
  signature: string;
  /** The customer it belongs to: charge_authorization must name this email. */
  email: string;
}

export interface EmulatedTransaction {
  id: number;
  reference: string;
  accessCode: string;
  /** What was (or is to be) paid, minor units. */
  amountMinor: number;
  /** What was asked for at initialize / charge time. */
  requestedAmountMinor: number;
  currency: string;
  email: string;
  callbackUrl: string | null;
  metadata: Record<string, unknown> | null;
  channels: string[];
  status: ChargeStatus;
  gatewayResponse: string | null;
  paidAt: Date | null;
  createdAt: Date;
  authorization: EmulatedAuthorization | null;
  source: 'initialize' | 'charge_authorization';
  /** For `open_url` and paused charges: where the customer would continue. */
  actionUrl: string | null;
}

export interface EmulatedRefund {
  id: number;
  transactionReference: string;
  transactionId: number;
  amountMinor: number;
  currency: string;
  status: RefundStatus;
  merchantNote: string | null;
  customerNote: string | null;
  refundReference: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** The integration id every emulated object carries. */
export const INTEGRATION_ID = 100_001;

export function randomCode(prefix: string, length = 10): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(length);
  let code = '';
  for (const byte of bytes) code += alphabet[byte % alphabet.length] ?? 'x';
  return `${prefix}${code}`;
}

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

export function customerJson(customer: EmulatedCustomer): Record<string, unknown> {
  return {
    id: customer.id,
    first_name: customer.firstName,
    last_name: customer.lastName,
    email: customer.email,
    customer_code: customer.customerCode,
    phone: customer.phone,
    metadata: customer.metadata,
    risk_action: 'default',
    international_format_phone: null,
  };
}

/** Paystack answers `{}` for a transaction without an authorization yet. */
export function authorizationJson(
  authorization: EmulatedAuthorization | null,
): Record<string, unknown> {
  if (authorization === null) return {};
  return {
    authorization_code: authorization.authorizationCode,
    bin: authorization.bin,
    last4: authorization.last4,
    exp_month: authorization.expMonth,
    exp_year: authorization.expYear,
    channel: 'card',
    card_type: authorization.cardType,
    bank: authorization.bank,
    country_code: 'NG',
    brand: authorization.brand,
    reusable: authorization.reusable,
    signature: authorization.signature,
    account_name: null,
  };
}

/** The transaction as verify, charge_authorization and `charge.success` show it. */
export function transactionJson(
  transaction: EmulatedTransaction,
  customer: EmulatedCustomer,
): Record<string, unknown> {
  const paid = transaction.status === 'success' || transaction.status === 'reversed';
  return {
    id: transaction.id,
    domain: 'test',
    status: transaction.status,
    reference: transaction.reference,
    receipt_number: null,
    amount: transaction.amountMinor,
    message: null,
    gateway_response: transaction.gatewayResponse,
    paid_at: iso(transaction.paidAt),
    created_at: iso(transaction.createdAt),
    channel: 'card',
    currency: transaction.currency,
    ip_address: '127.0.0.1',
    // Paystack echoes "" when no metadata was given.
    metadata: transaction.metadata ?? '',
    log: null,
    fees: paid ? Math.min(200_000, Math.round(transaction.amountMinor * 0.015)) : null,
    fees_split: null,
    authorization: authorizationJson(transaction.authorization),
    customer: customerJson(customer),
    plan: null,
    split: {},
    order_id: null,
    paidAt: iso(transaction.paidAt),
    createdAt: iso(transaction.createdAt),
    requested_amount: transaction.requestedAmountMinor,
    pos_transaction_data: null,
    source: null,
    fees_breakdown: null,
    transaction_date: iso(transaction.createdAt),
    plan_object: {},
    subaccount: {},
  };
}

export function chargeJson(
  transaction: EmulatedTransaction,
  customer: EmulatedCustomer,
): Record<string, unknown> {
  const json = transactionJson(transaction, customer);
  if (transaction.status === 'paused') {
    return { ...json, paused: true, authorization_url: transaction.actionUrl };
  }
  if (transaction.status === 'open_url') return { ...json, url: transaction.actionUrl };
  return json;
}

export function refundJson(
  refund: EmulatedRefund,
  transaction: EmulatedTransaction,
): Record<string, unknown> {
  return {
    transaction: {
      id: transaction.id,
      domain: 'test',
      reference: transaction.reference,
      amount: transaction.amountMinor,
      paid_at: iso(transaction.paidAt),
      channel: 'card',
      currency: transaction.currency,
      authorization: { exp_month: null, exp_year: null, account_name: null },
      customer: { international_format_phone: null },
      plan: {},
      subaccount: { currency: null },
      split: {},
      order_id: null,
      paidAt: iso(transaction.paidAt),
      pos_transaction_data: null,
      source: null,
      fees_breakdown: null,
    },
    integration: INTEGRATION_ID,
    deducted_amount: 0,
    channel: null,
    merchant_note: refund.merchantNote ?? '',
    customer_note: refund.customerNote ?? '',
    status: refund.status,
    refunded_by: 'emulator@example.test',
    expected_at: iso(new Date(refund.createdAt.getTime() + 10 * 86_400_000)),
    currency: refund.currency,
    domain: 'test',
    amount: refund.amountMinor,
    fully_deducted: false,
    id: refund.id,
    createdAt: iso(refund.createdAt),
    updatedAt: iso(refund.updatedAt),
  };
}

/**
 * `refund.*` webhook data: flatter than the REST refund, and with `amount` as
 * a string, as Paystack sends it.
 */
export function refundEventJson(
  refund: EmulatedRefund,
  customer: EmulatedCustomer,
): Record<string, unknown> {
  return {
    status: refund.status,
    transaction_reference: refund.transactionReference,
    refund_reference: refund.refundReference,
    amount: String(refund.amountMinor),
    currency: refund.currency,
    processor: 'mastercard',
    customer: {
      first_name: customer.firstName,
      last_name: customer.lastName,
      email: customer.email,
    },
    integration: INTEGRATION_ID,
    domain: 'test',
    id: String(refund.id),
  };
}
