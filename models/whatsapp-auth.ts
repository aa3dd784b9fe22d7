import mongoose, { Schema, type InferSchemaType } from 'mongoose';

/**
 * The WhatsApp login (Baileys' auth state), one document per item: the
 * credentials (`key: 'creds'`) and every Signal key (`key: '<type>/<id>'`:
 * pre-keys, sessions, sender keys, app-state sync keys, LID mappings, ...).
 * `value` is JSON written with Baileys' `BufferJSON.replacer`, so Buffers
 * survive the round trip and no key name reaches MongoDB as a field name
 * (jids contain dots). `session` names the login, so a test or a second
 * number can keep its own.
 */
const whatsAppAuthSchema = new Schema(
  {
    session: { type: String, required: true, maxlength: 100 },
    key: { type: String, required: true, maxlength: 500 },
    value: { type: String, required: true },
  },
  { timestamps: true, strict: 'throw' },
);

whatsAppAuthSchema.index({ session: 1, key: 1 }, { unique: true });

export type WhatsAppAuthData = InferSchemaType<typeof whatsAppAuthSchema>;

export const WhatsAppAuth = mongoose.model('WhatsAppAuth', whatsAppAuthSchema);
