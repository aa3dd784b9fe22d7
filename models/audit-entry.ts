import mongoose, { Schema, type InferSchemaType } from 'mongoose';

/** Where an audited action came from. */
export const auditChannels = ['telegram', 'whatsapp', 'api', 'cli', 'system'] as const;
export type AuditChannel = (typeof auditChannels)[number];

const targetSchema = new Schema(
  {
    kind: { type: String, required: true, maxlength: 50 },
    id: { type: String, required: true, maxlength: 200 },
  },
  { _id: false, strict: 'throw' },
);

/**
 * One thing someone did that an operator may have to answer for later (an
 * admin's refund, a settings change, a plan given away): who, through which
 * channel, what, to what, with which facts, and when. Written once and never
 * changed (core/audit.ts). `key`, when given, makes a repeat of the same
 * action (a retried command) one entry.
 */
const auditEntrySchema = new Schema(
  {
    /** An admin's account id (hex), or 'system' for what Atlantic did by itself. */
    actor: { type: String, required: true, maxlength: 64 },
    channel: { type: String, enum: auditChannels, required: true },
    /** Dotted verb, e.g. `refund.requested`. */
    action: { type: String, required: true, maxlength: 100 },
    /** What it was done to: `{ kind: 'payment', id: '<reference>' }`. */
    target: { type: targetSchema, required: true },
    /** Facts an operator needs to read it later (amounts, reasons); no secrets. */
    details: { type: Schema.Types.Mixed, default: () => ({}) },
    at: { type: Date, required: true },
    key: { type: String, maxlength: 300 },
  },
  { strict: 'throw', versionKey: false, minimize: false },
);

auditEntrySchema.index(
  { key: 1 },
  { unique: true, partialFilterExpression: { key: { $exists: true } } },
);
auditEntrySchema.index({ at: -1 });
auditEntrySchema.index({ actor: 1, at: -1 });
auditEntrySchema.index({ 'target.kind': 1, 'target.id': 1, at: -1 });

export type AuditEntryData = InferSchemaType<typeof auditEntrySchema>;
export type AuditEntryRecord = AuditEntryData & { _id: mongoose.Types.ObjectId };

export const AuditEntry = mongoose.model('AuditEntry', auditEntrySchema);
