/**
 * Invoices (receipts) for fulfilled payments, numbered ATL-<year>-<000123>
 * without gaps or duplicates, and without multi-document transactions.
 *
 * Numbering protocol (per UTC year; the counter document is models/invoice-counter.ts):
 *
 *   1. Insert the invoice as a `draft` without a number. `paymentReference` is
 *      unique, so a second issue for the same payment finds this draft.
 *   2. Claim: read the counter (`last: L`, no claim), read the oldest unnumbered
 *      drafts of the year (up to 100, ours among them), then ONE conditional
 *      update `{ last: L, pending: null } -> { pending: { invoiceIds, first: L + 1 } }`.
 *      At most one claim exists at a time, and it names drafts that exist and
 *      had no number when it was made (a number is only written under a claim,
 *      and the claim needs `last` unchanged and no claim pending).
 *   3. Write: the i-th draft gets `first + i`, only if it has no number yet.
 *   4. Release: `{ last: L, pending: <that claim> } -> { last: L + n, pending: null }`
 *      once every listed draft carries its number.
 *
 * Anyone who finds a claim pending finishes it (steps 3-4) before claiming,
 * whoever made it (a claim made by this process is awaited instead of being
 * written twice). Why no gap: `last` only moves past numbers the drafts of the
 * claim carry, and numbers are only claimed from `last + 1`. Why no duplicate: a
 * number is written only under its claim, only into a draft without one, and
 * the next claim waits for the release; the unique index on (year, sequence)
 * backs this up. A run that dies anywhere leaves unnumbered drafts (numbered
 * by the next issue in that year, or by `finishDraftInvoices`) or a pending
 * claim (finished the same way).
 *
 * Batches keep numbering fast under load: one issuer numbers every draft that
 * is waiting, so fifty payments fulfilled at once cost one claim and fifty
 * writes instead of fifty rounds of contention.
 *
 * Credit notes (a refund of a paid invoice) are issued the same way, with the
 * refund as their `paymentReference`, and take their numbers from the same
 * sequence: one gap-free series of documents per year, as tax offices like it.
 *
 * VAT: prices are VAT-inclusive. The lines add up to what Paystack charged;
 * VAT is the part of that total, `total * rate / (1 + rate)`, rounded half-even
 * by lib/money, and the net is the rest, so net + VAT = total exactly.
 */
import { isDuplicateKeyError } from '../models/errors.js';
import { insertOne } from '../models/batching.js';
import type { Clock } from '../lib/clock.js';
import { DomainError } from '../lib/errors.js';
import { noFaults, type FaultPoints } from '../lib/faults.js';
import { assertCurrency, assertMinorUnits, money, prorate, sumMoney } from '../lib/money.js';
import type { Currency } from '../lib/money.js';
import { Invoice, type InvoiceKind } from '../models/invoice.js';
import { InvoiceCounter } from '../models/invoice-counter.js';

export const INVOICE_NUMBER_PREFIX = 'ATL';

/** Fault points of the numbering protocol, in order. */
export const INVOICE_STEPS = [
  'invoice.draft_inserted',
  'invoice.number_claimed',
  'invoice.number_written',
  'invoice.counter_released',
] as const;

/** Enough rounds for hundreds of invoices racing for one year's counter. */
const MAX_NUMBERING_ROUNDS = 10_000;

/** An id as a string, or anything with `toHexString()` (a mongoose ObjectId). */
export type IdLike = string | { toHexString(): string };

export interface InvoiceLineInput {
  description: string;
  /** A positive whole number. */
  quantity: number;
  /** Price of one unit in minor units, VAT included. */
  unitMinor: number;
}

export interface InvoiceParty {
  name?: string | undefined;
  email?: string | undefined;
  phone?: string | undefined;
}

export interface InvoiceBusiness {
  name: string;
  address: string;
  email: string;
  taxId?: string | undefined;
}

export interface InvoiceVat {
  enabled: boolean;
  /** 750 = 7.5 %. */
  rateBps: number;
}

export type { InvoiceKind };

/** What a credit note credits. */
export interface CreditedInvoice {
  /** The credited invoice's number (ATL-2026-000123). */
  invoiceNumber: string;
  paymentReference: string;
}

export interface IssueInvoiceInput {
  accountId: IdLike;
  /** The payment this invoice is for; one invoice per payment. A credit note: its refund's reference. */
  paymentReference: string;
  /** Default 'invoice'. A credit note needs `credits`. */
  kind?: InvoiceKind;
  credits?: CreditedInvoice;
  customer: InvoiceParty;
  lines: readonly InvoiceLineInput[];
  currency: Currency;
  vat: InvoiceVat;
  business: InvoiceBusiness;
  paidAt: Date;
}

export interface InvoiceOptions {
  clock: Clock;
  faults?: FaultPoints;
}

export interface InvoiceLine extends InvoiceLineInput {
  /** quantity * unitMinor. */
  amountMinor: number;
}

/** An issued invoice, as read by the API, the bot and the PDF renderer. */
export interface IssuedInvoice {
  id: string;
  accountId: string;
  paymentReference: string;
  kind: InvoiceKind;
  /** A credit note: the invoice it credits. */
  credits?: CreditedInvoice | undefined;
  /** e.g. ATL-2026-000123 */
  number: string;
  year: number;
  sequence: number;
  issuedAt: Date;
  paidAt: Date;
  customer: InvoiceParty;
  business: InvoiceBusiness;
  lines: InvoiceLine[];
  currency: Currency;
  vat: InvoiceVat;
  netMinor: number;
  vatMinor: number;
  totalMinor: number;
}

export interface InvoiceTotals {
  lines: InvoiceLine[];
  netMinor: number;
  vatMinor: number;
  totalMinor: number;
}

/** `ATL-2026-000123`; more than 999,999 invoices in a year simply widen the number. */
export function formatInvoiceNumber(year: number, sequence: number): string {
  return `${INVOICE_NUMBER_PREFIX}-${year}-${String(sequence).padStart(6, '0')}`;
}

/** Line amounts, VAT and total for VAT-inclusive prices (see the file comment). */
export function computeInvoiceTotals(
  lines: readonly InvoiceLineInput[],
  currency: Currency,
  vat: InvoiceVat,
): InvoiceTotals {
  assertCurrency(currency);
  if (lines.length === 0) invalid('an invoice needs at least one line');
  if (!Number.isSafeInteger(vat.rateBps) || vat.rateBps < 0 || vat.rateBps > 10_000) {
    invalid(`VAT rate must be 0-10000 basis points, got ${vat.rateBps}`);
  }
  const priced = lines.map((line, index): InvoiceLine => {
    const description = line.description.trim();
    if (description === '') invalid(`line ${index + 1} needs a description`);
    if (!Number.isSafeInteger(line.quantity) || line.quantity < 1) {
      invalid(`line ${index + 1}: quantity must be a positive whole number`);
    }
    if (!Number.isSafeInteger(line.unitMinor) || line.unitMinor < 0) {
      invalid(`line ${index + 1}: unit price must be a non-negative number of minor units`);
    }
    const amountMinor = assertMinorUnits(line.quantity * line.unitMinor, 'line amount');
    return { description, quantity: line.quantity, unitMinor: line.unitMinor, amountMinor };
  });
  const totalMinor = sumMoney(
    priced.map((line) => money(line.amountMinor, currency)),
    currency,
  ).amountMinor;
  const vatMinor =
    vat.enabled && vat.rateBps > 0
      ? prorate(totalMinor, vat.rateBps, 10_000 + vat.rateBps, 'half-even')
      : 0;
  return { lines: priced, netMinor: totalMinor - vatMinor, vatMinor, totalMinor };
}

/**
 * Issues the invoice of one fulfilled payment, or returns the one already
 * issued for `paymentReference`. Safe to run again after dying at any step,
 * and concurrently with other issues.
 */
export async function issueInvoice(
  input: IssueInvoiceInput,
  { clock, faults = noFaults }: InvoiceOptions,
): Promise<IssuedInvoice> {
  const accountId = idString(input.accountId);
  const paymentReference = input.paymentReference.trim();
  if (paymentReference === '') invalid('an invoice needs the payment reference');
  if (!(input.paidAt instanceof Date) || Number.isNaN(input.paidAt.getTime())) {
    invalid('paidAt must be a valid date');
  }
  const kind = input.kind ?? 'invoice';
  if (kind === 'credit_note' && !input.credits)
    invalid('a credit note names the invoice it credits');
  const totals = computeInvoiceTotals(input.lines, input.currency, input.vat);

  // Insert first: a new payment's draft costs one write; a repeat finds the existing one.
  let draft: InvoiceRecord | null;
  const issuedAt = clock.now();
  try {
    draft = await insertOne<InvoiceRecord>(Invoice, {
      accountId,
      paymentReference,
      kind,
      ...(kind === 'credit_note' && input.credits
        ? {
            creditsInvoiceNumber: input.credits.invoiceNumber,
            creditsPaymentReference: input.credits.paymentReference,
          }
        : {}),
      status: 'draft',
      year: issuedAt.getUTCFullYear(),
      issuedAt,
      paidAt: input.paidAt,
      customer: definedOnly(input.customer),
      business: definedOnly(input.business),
      lines: totals.lines,
      currency: input.currency,
      vat: { enabled: input.vat.enabled, rateBps: input.vat.rateBps },
      netMinor: totals.netMinor,
      vatMinor: totals.vatMinor,
      totalMinor: totals.totalMinor,
    });
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
    draft = await Invoice.findOne({ paymentReference }).lean();
  }
  if (!draft) throw new DomainError('INTERNAL', 'the invoice draft vanished after its insert');
  if (String(draft.accountId) !== accountId) {
    throw new DomainError('CONFLICT', 'this payment already has an invoice for another account', {
      details: { paymentReference },
    });
  }
  faults.reach('invoice.draft_inserted');

  if (draft.sequence != null) return toIssuedInvoice(draft);
  const sequence = await numberInvoice(String(draft._id), draft.year, { clock, faults });
  return toIssuedInvoice({
    ...draft,
    sequence,
    number: formatInvoiceNumber(draft.year, sequence),
  });
}

/**
 * Numbers every draft left behind by runs that died (a job calls this as a
 * backstop; `issueInvoice` run again does the same for its own payment).
 * Returns how many drafts it numbered.
 */
export async function finishDraftInvoices({
  clock,
  faults = noFaults,
}: InvoiceOptions): Promise<number> {
  const drafts = await Invoice.find({ sequence: { $exists: false } }, { _id: 1, year: 1 })
    .sort({ createdAt: 1 })
    .lean();
  let numbered = 0;
  for (const draft of drafts) {
    await numberInvoice(String(draft._id), draft.year, { clock, faults });
    numbered += 1;
  }
  // A claim can outlive its draft's numbering only by a crash before release.
  const stuck = await InvoiceCounter.find({ pending: { $ne: null } }).lean();
  for (const counter of stuck) {
    if (counter.pending) {
      await writeClaim(counter.year, counter.pending, { clock, faults });
    }
  }
  return numbered;
}

/** The account's issued invoices and credit notes, newest first. */
export async function listInvoices(
  accountId: IdLike,
  { limit = 100 }: { limit?: number } = {},
): Promise<IssuedInvoice[]> {
  const id = idString(accountId);
  const docs = await Invoice.find({ accountId: id, status: 'issued' })
    .sort({ year: -1, sequence: -1 })
    .limit(Math.max(1, Math.min(limit, 1000)))
    .lean();
  return docs.map(toIssuedInvoice);
}

/** One issued invoice of the account by its number (ATL-2026-000123), or null. */
export async function getInvoice(accountId: IdLike, number: string): Promise<IssuedInvoice | null> {
  const doc = await Invoice.findOne({
    accountId: idString(accountId),
    number: number.trim().toUpperCase(),
    status: 'issued',
  }).lean();
  return doc ? toIssuedInvoice(doc) : null;
}

/** The issued invoice (or credit note) whose `paymentReference` this is, or null while there is none. */
export async function getInvoiceByPaymentReference(
  paymentReference: string,
): Promise<IssuedInvoice | null> {
  const doc = await Invoice.findOne({
    paymentReference: paymentReference.trim(),
    status: 'issued',
  }).lean();
  return doc ? toIssuedInvoice(doc) : null;
}

interface Claim {
  /** Strings or ObjectIds read back from the counter. */
  invoiceIds: readonly (string | { toHexString(): string })[];
  first: number;
}

/** Drafts numbered per claim at most. */
const CLAIM_BATCH = 100;

/**
 * The batch this process is numbering per year, if any: the other issuers of
 * this process wait for it instead of reading and claiming themselves, so a
 * burst of payments costs one claim and one write per invoice.
 */
const localBatches = new Map<number, Promise<ReadonlyMap<string, number>>>();

/** Steps 2-4 of the protocol until the draft has its number; returns the number. */
async function numberInvoice(
  invoiceId: string,
  year: number,
  options: InvoiceOptions,
): Promise<number> {
  for (let round = 0; round < MAX_NUMBERING_ROUNDS; round += 1) {
    const running = localBatches.get(year);
    if (running) {
      // A batch that fails (a crash of its leader) is retried by whoever comes next.
      const numbered = await running.catch(() => null);
      const sequence = numbered?.get(invoiceId);
      if (sequence !== undefined) return sequence;
      continue;
    }
    const batch = leadBatch(year, options);
    localBatches.set(year, batch);
    let numbered: ReadonlyMap<string, number>;
    try {
      numbered = await batch;
    } finally {
      if (localBatches.get(year) === batch) localBatches.delete(year);
    }
    const sequence = numbered.get(invoiceId);
    if (sequence !== undefined) return sequence;
    // Not in this batch: numbered by another process, or more than a batch was waiting.
    const invoice = await Invoice.findById(invoiceId, { sequence: 1 }).lean();
    if (!invoice) {
      throw new DomainError('INTERNAL', `invoice ${invoiceId} vanished while numbering`);
    }
    if (invoice.sequence != null) return invoice.sequence;
  }
  throw new DomainError('CONFLICT', `could not number invoice ${invoiceId}: too much contention`);
}

/**
 * Finishes a pending claim if there is one, then claims and numbers the
 * oldest waiting drafts of the year. Returns the numbers it wrote, by draft id
 * (empty when another process holds the claim or nothing was waiting).
 */
async function leadBatch(
  year: number,
  options: InvoiceOptions,
): Promise<ReadonlyMap<string, number>> {
  await ensureCounter(year);
  const numbered = new Map<string, number>();
  let counter = await InvoiceCounter.findOne({ year }).lean();
  if (!counter) throw new DomainError('INTERNAL', `invoice counter ${year} vanished`);
  if (counter.pending) {
    for (const [id, sequence] of await writeClaim(year, counter.pending, options)) {
      numbered.set(id, sequence);
    }
    counter = await InvoiceCounter.findOne({ year }).lean();
    if (!counter || counter.pending) return numbered;
  }
  const drafts = await Invoice.find({ year, sequence: { $exists: false } }, { _id: 1 })
    .sort({ _id: 1 })
    .limit(CLAIM_BATCH)
    .lean();
  if (drafts.length === 0) return numbered;
  const claim = { invoiceIds: drafts.map((draft) => String(draft._id)), first: counter.last + 1 };
  const claimed = await InvoiceCounter.updateOne(
    { year, last: counter.last, pending: null },
    { $set: { pending: claim } },
  );
  if (claimed.modifiedCount !== 1) return numbered; // another process claimed first
  (options.faults ?? noFaults).reach('invoice.number_claimed');
  for (const [id, sequence] of await writeClaim(year, claim, options)) numbered.set(id, sequence);
  return numbered;
}

/** Steps 3 and 4 for a claim; returns the numbers of its drafts. */
async function writeClaim(
  year: number,
  claim: Claim,
  { clock, faults = noFaults }: InvoiceOptions,
): Promise<Map<string, number>> {
  const ids = claim.invoiceIds.map(idString);
  const now = clock.now();
  // One command writes the whole claim's numbers (the statements are independent).
  const written = await Invoice.bulkWrite(
    ids.map((invoiceId, i) => ({
      updateOne: {
        filter: { _id: invoiceId, year, sequence: { $exists: false } },
        update: {
          $set: {
            sequence: claim.first + i,
            number: formatInvoiceNumber(year, claim.first + i),
            status: 'issued',
            numberedAt: now,
          },
        },
      },
    })),
    { ordered: false },
  );
  const allWritten = written.modifiedCount === ids.length;
  faults.reach('invoice.number_written');

  if (!allWritten) {
    // Finishing a claim someone else started (or a crashed run's): check what is there.
    const numbered = await Invoice.find({ _id: { $in: ids } }, { sequence: 1 }).lean();
    const byId = new Map(numbered.map((doc) => [String(doc._id), doc.sequence]));
    const misplaced = ids.filter((id, i) => byId.get(id) !== claim.first + i);
    if (misplaced.length > 0) {
      // Cannot happen under the protocol (see the header); never paper over it.
      throw new DomainError(
        'INTERNAL',
        `invoice claim ${year}/${claim.first} found drafts numbered outside it: ${misplaced.join(', ')}`,
      );
    }
  }
  await InvoiceCounter.updateOne(
    { year, last: claim.first - 1, 'pending.first': claim.first },
    { $set: { last: claim.first + ids.length - 1, pending: null } },
  );
  faults.reach('invoice.counter_released');
  return new Map(ids.map((id, i) => [id, claim.first + i]));
}

/** Years whose counter this process has seen exist (it is never deleted). */
const knownCounters = new Set<number>();

async function ensureCounter(year: number): Promise<void> {
  if (knownCounters.has(year)) return;
  try {
    await InvoiceCounter.updateOne(
      { year },
      { $setOnInsert: { last: 0, pending: null } },
      { upsert: true },
    );
  } catch (error) {
    // Two first issues of a year racing: the other upsert created it.
    if (!isDuplicateKeyError(error)) throw error;
  }
  knownCounters.add(year);
}

interface InvoiceRecord {
  _id: unknown;
  accountId: unknown;
  paymentReference: string;
  kind?: InvoiceKind | null;
  creditsInvoiceNumber?: string | null;
  creditsPaymentReference?: string | null;
  number?: string | null;
  year: number;
  sequence?: number | null;
  issuedAt: Date;
  paidAt: Date;
  customer?: { name?: string | null; email?: string | null; phone?: string | null } | null;
  business?: { name: string; address: string; email: string; taxId?: string | null } | null;
  lines: { description: string; quantity: number; unitMinor: number; amountMinor: number }[];
  currency: string;
  vat?: { enabled: boolean; rateBps: number } | null;
  netMinor: number;
  vatMinor: number;
  totalMinor: number;
}

function toIssuedInvoice(doc: InvoiceRecord): IssuedInvoice {
  if (doc.sequence == null || doc.number == null || !doc.business || !doc.vat) {
    throw new DomainError(
      'INTERNAL',
      `invoice ${String(doc._id)} has no number yet or is incomplete`,
    );
  }
  return {
    id: String(doc._id),
    accountId: String(doc.accountId),
    paymentReference: doc.paymentReference,
    kind: doc.kind ?? 'invoice',
    credits:
      doc.creditsInvoiceNumber && doc.creditsPaymentReference
        ? {
            invoiceNumber: doc.creditsInvoiceNumber,
            paymentReference: doc.creditsPaymentReference,
          }
        : undefined,
    number: doc.number,
    year: doc.year,
    sequence: doc.sequence,
    issuedAt: doc.issuedAt,
    paidAt: doc.paidAt,
    customer: {
      name: doc.customer?.name ?? undefined,
      email: doc.customer?.email ?? undefined,
      phone: doc.customer?.phone ?? undefined,
    },
    business: {
      name: doc.business.name,
      address: doc.business.address,
      email: doc.business.email,
      taxId: doc.business.taxId ?? undefined,
    },
    lines: doc.lines.map((line) => ({
      description: line.description,
      quantity: line.quantity,
      unitMinor: line.unitMinor,
      amountMinor: line.amountMinor,
    })),
    currency: assertCurrency(doc.currency),
    vat: { enabled: doc.vat.enabled, rateBps: doc.vat.rateBps },
    netMinor: doc.netMinor,
    vatMinor: doc.vatMinor,
    totalMinor: doc.totalMinor,
  };
}

function idString(id: IdLike): string {
  const text = typeof id === 'string' ? id : id.toHexString();
  if (!/^[0-9a-f]{24}$/i.test(text)) invalid(`"${text}" is not an account id`);
  return text;
}

/** Drops undefined fields so `strict: 'throw'` schemas and optional fields agree. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined && v !== null && v !== ''),
  ) as Partial<T>;
}

function invalid(message: string): never {
  throw new DomainError('VALIDATION_FAILED', message);
}
