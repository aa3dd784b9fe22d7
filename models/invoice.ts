import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';
import { CURRENCIES } from '../lib/money.js';

export const invoiceStatuses = ['draft', 'issued'] as const;
export type InvoiceStatus = (typeof invoiceStatuses)[number];

/** An invoice (receipt) of a payment, or a credit note for a refund of one. */
export const invoiceKinds = ['invoice', 'credit_note'] as const;
export type InvoiceKind = (typeof invoiceKinds)[number];

const integer = (name: string) => ({
  validator: Number.isSafeInteger,
  message: `${name} must be an integer`,
});

const invoiceLineSchema = new Schema(
  {
    description: { type: String, required: true, trim: true, maxlength: 500 },
    quantity: { type: Number, required: true, min: 1, validate: integer('quantity') },
    /** Price of one unit in minor units, VAT included (what the customer pays). */
    unitMinor: { type: Number, required: true, min: 0, validate: integer('unitMinor') },
    /** quantity * unitMinor. */
    amountMinor: { type: Number, required: true, min: 0, validate: integer('amountMinor') },
  },
  { _id: false },
);

/**
 * The invoice (receipt) of one fulfilled payment. It is written first as a
 * `draft` without a number, unique on `paymentReference`, and becomes
 * `issued` when core/invoices.ts writes its gap-free number (`sequence` within
 * `year`, shown as `number`, e.g. ATL-2026-000123). The number, once written,
 * never changes; amounts are integers in minor units and VAT-inclusive.
 *
 * A credit note (`kind: 'credit_note'`) is the same document for a refund:
 * its `paymentReference` is the refund's (`refund:<refund id>`, one credit
 * note per refund), it names the invoice it credits, and its amounts are
 * what went back, as positive numbers. Credit notes share the invoices'
 * number sequence, so the whole series stays gap-free.
 */
const invoiceSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** The payment this invoice is for; for a credit note, `refund:<refund id>`. */
    paymentReference: { type: String, required: true, trim: true, maxlength: 200 },
    /** Absent on invoices written before credit notes existed: read as 'invoice'. */
    kind: { type: String, enum: invoiceKinds },
    /** A credit note: the number and payment of the invoice it credits. */
    creditsInvoiceNumber: { type: String, maxlength: 64 },
    creditsPaymentReference: { type: String, maxlength: 200 },
    status: { type: String, enum: invoiceStatuses, required: true, default: 'draft' },
    /** UTC calendar year of `issuedAt`: the sequence this invoice is numbered in. */
    year: { type: Number, required: true, min: 2000, max: 9999 },
    sequence: { type: Number, min: 1, validate: integer('sequence') },
    number: { type: String, maxlength: 64 },
    issuedAt: { type: Date, required: true },
    numberedAt: { type: Date },
    paidAt: { type: Date, required: true },
    customer: {
      name: { type: String, trim: true, maxlength: 256 },
      email: { type: String, trim: true, maxlength: 254 },
      phone: { type: String, trim: true, maxlength: 32 },
    },
    business: {
      name: { type: String, required: true, trim: true, maxlength: 256 },
      // Optional: a fresh install has no address until an admin sets one.
      address: { type: String, trim: true, maxlength: 1000, default: '' },
      email: { type: String, trim: true, maxlength: 254, default: '' },
      taxId: { type: String, trim: true, maxlength: 64 },
    },
    lines: {
      type: [invoiceLineSchema],
      required: true,
      validate: {
        validator: (lines: unknown[]) => lines.length > 0,
        message: 'an invoice needs at least one line',
      },
    },
    currency: { type: String, enum: CURRENCIES, required: true },
    vat: {
      enabled: { type: Boolean, required: true },
      rateBps: { type: Number, required: true, min: 0, max: 10_000, validate: integer('rateBps') },
    },
    /** Total without VAT (totalMinor - vatMinor). */
    netMinor: { type: Number, required: true, min: 0, validate: integer('netMinor') },
    vatMinor: { type: Number, required: true, min: 0, validate: integer('vatMinor') },
    /** What the customer paid: the sum of the lines. */
    totalMinor: { type: Number, required: true, min: 0, validate: integer('totalMinor') },
  },
  { timestamps: true, strict: 'throw' },
);

invoiceSchema.index({ paymentReference: 1 }, { unique: true });
// The safety net under the numbering protocol: one invoice per number.
invoiceSchema.index(
  { year: 1, sequence: 1 },
  { unique: true, partialFilterExpression: { sequence: { $exists: true } } },
);
invoiceSchema.index({ accountId: 1, sequence: -1 });
invoiceSchema.index({ accountId: 1, number: 1 });
invoiceSchema.index({ status: 1, createdAt: 1 });

export type InvoiceData = InferSchemaType<typeof invoiceSchema>;
export type InvoiceDocument = HydratedDocument<InvoiceData>;

export const Invoice = mongoose.model('Invoice', invoiceSchema);
