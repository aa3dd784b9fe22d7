import mongoose, { Schema, type InferSchemaType, type HydratedDocument } from 'mongoose';
import { CURRENCIES } from '../lib/money.js';

const wholeNumber = {
  validator: (value: number) => Number.isSafeInteger(value) && value >= 0,
  message: '{PATH} must be a whole number of at least 0',
};

/**
 * The closed statement of one pay-as-you-go hour of one account, written by
 * the hourly closing pass (core/payg.ts closePaygHours) once nothing can
 * change it any more: what the connected hour cost, what data was bought,
 * used and given back, and what the usage buckets say was relayed. The
 * customer's PAYG history is these rows; the money itself is in the ledger.
 */
const paygHourSchema = new Schema(
  {
    accountId: { type: Schema.Types.ObjectId, ref: 'Account', required: true },
    /** Start of the UTC hour. */
    hourStart: { type: Date, required: true },
    currency: { type: String, enum: CURRENCIES, required: true },
    /** The connected-hour charge (0 when the hour had data but no charge of its own). */
    connectedMinor: { type: Number, required: true, validate: wholeNumber },
    /** Data bought from the wallet in this hour (per-GB charging on), and what it cost. */
    dataBoughtBytes: { type: Number, required: true, validate: wholeNumber },
    dataPaidMinor: { type: Number, required: true, validate: wholeNumber },
    /** Data the gateways booked against what was bought. */
    dataUsedBytes: { type: Number, required: true, validate: wholeNumber },
    /** What the used data costs: dataPaidMinor x used / bought, rounded up. */
    dataCostMinor: { type: Number, required: true, validate: wholeNumber },
    /** Given back to the wallet for bought data left unused: dataPaidMinor - dataCostMinor. */
    dataReturnedMinor: { type: Number, required: true, validate: wholeNumber },
    /** connectedMinor + dataCostMinor: what the hour cost in the end. */
    totalMinor: { type: Number, required: true, validate: wholeNumber },
    /** Bytes the usage buckets hold for the hour (all locations), and the connected seconds. */
    bucketBytes: { type: Number, required: true, validate: wholeNumber },
    connectedSeconds: { type: Number, required: true, validate: wholeNumber },
    closedAt: { type: Date, required: true },
  },
  { strict: 'throw', versionKey: false },
);

paygHourSchema.index({ accountId: 1, hourStart: 1 }, { unique: true });

export type PaygHourData = InferSchemaType<typeof paygHourSchema>;
export type PaygHourDocument = HydratedDocument<PaygHourData>;

export const PaygHour = mongoose.model('PaygHour', paygHourSchema);
