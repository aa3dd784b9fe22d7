import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';

/**
 * The invoice number sequence of one calendar year (UTC). `last` is the
 * highest number that is certainly used by an invoice; `pending` is a claim of
 * the numbers `first`, `first + 1`, ... for the listed drafts, in that order.
 * While a claim is pending nobody else may claim, and anyone who sees it may
 * finish it: write each number into its draft, then advance `last` and clear
 * the claim. The protocol lives in core/invoices.ts.
 */
const pendingClaimSchema = new Schema(
  {
    invoiceIds: {
      type: [{ type: Schema.Types.ObjectId, ref: 'Invoice' }],
      required: true,
      validate: { validator: (ids: unknown[]) => ids.length > 0, message: 'a claim names drafts' },
    },
    first: {
      type: Number,
      required: true,
      min: 1,
      validate: { validator: Number.isSafeInteger, message: 'first must be an integer' },
    },
  },
  { _id: false },
);

const invoiceCounterSchema = new Schema(
  {
    year: { type: Number, required: true, min: 2000, max: 9999 },
    last: {
      type: Number,
      required: true,
      min: 0,
      default: 0,
      validate: { validator: Number.isSafeInteger, message: 'last must be an integer' },
    },
    pending: { type: pendingClaimSchema, default: null },
  },
  { timestamps: true, strict: 'throw' },
);

invoiceCounterSchema.index({ year: 1 }, { unique: true });

export type InvoiceCounterData = InferSchemaType<typeof invoiceCounterSchema>;
export type InvoiceCounterDocument = HydratedDocument<InvoiceCounterData>;

export const InvoiceCounter = mongoose.model('InvoiceCounter', invoiceCounterSchema);
