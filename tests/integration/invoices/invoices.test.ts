import { describe, expect, it } from '@jest/globals';
import { TestClock } from '../../../lib/clock.js';
import { crashAt, recordSteps, SimulatedCrash } from '../../../lib/faults.js';
import {
  INVOICE_STEPS,
  computeInvoiceTotals,
  finishDraftInvoices,
  getInvoice,
  issueInvoice,
  listInvoices,
  type IssueInvoiceInput,
} from '../../../core/invoices.js';
import { Account } from '../../../models/account.js';
import { Invoice } from '../../../models/invoice.js';
import { InvoiceCounter } from '../../../models/invoice-counter.js';
import { useTestDatabase } from '../../support/database.js';

useTestDatabase();

const business = {
  name: 'Atlantic Networks Ltd',
  address: '12 Marina Road, Lagos',
  email: 'billing@atlantic.example',
  taxId: 'TIN-0001',
};

let referenceCount = 0;

async function newAccount(): Promise<string> {
  const account = await Account.create({});
  return account._id.toHexString();
}

function input(accountId: string, overrides: Partial<IssueInvoiceInput> = {}): IssueInvoiceInput {
  referenceCount += 1;
  return {
    accountId,
    paymentReference: `atl-ref-${referenceCount}`,
    customer: { name: 'Ada Obi', email: 'ada@example.com' },
    lines: [{ description: 'Personal plan, 1 month', quantity: 1, unitMinor: 1_200_000 }],
    currency: 'NGN',
    vat: { enabled: true, rateBps: 750 },
    business,
    paidAt: new Date('2026-03-01T10:00:00Z'),
    ...overrides,
  };
}

/** Every number of the year, sorted; gap-free means exactly 1..n. */
async function sequencesOf(year: number): Promise<number[]> {
  const docs = await Invoice.find({ year, sequence: { $exists: true } }, { sequence: 1 }).lean();
  return docs.map((doc) => doc.sequence ?? 0).sort((a, b) => a - b);
}

const oneTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('issueInvoice', () => {
  it('issues ATL-<year>-000001 with VAT taken out of the price the customer paid', async () => {
    const clock = new TestClock('2026-03-01T10:00:05Z');
    const accountId = await newAccount();

    const invoice = await issueInvoice(input(accountId), { clock });

    expect(invoice.number).toBe('ATL-2026-000001');
    expect(invoice.sequence).toBe(1);
    expect(invoice.totalMinor).toBe(1_200_000);
    // 1,200,000 * 750 / 10,750 = 83,720.93 -> 83,721 (half-even)
    expect(invoice.vatMinor).toBe(83_721);
    expect(invoice.netMinor).toBe(1_200_000 - 83_721);
    expect(invoice.issuedAt).toEqual(new Date('2026-03-01T10:00:05Z'));
    expect(invoice.business.taxId).toBe('TIN-0001');
  });

  it('returns the same invoice when the same payment is issued again', async () => {
    const clock = new TestClock('2027-01-05T00:00:00Z');
    const accountId = await newAccount();
    const request = input(accountId);

    const first = await issueInvoice(request, { clock });
    const again = await issueInvoice(request, { clock });
    const racing = await Promise.all(
      Array.from({ length: 5 }, () => issueInvoice(request, { clock })),
    );

    expect(again.id).toBe(first.id);
    expect(racing.map((i) => i.number)).toEqual(Array(5).fill(first.number));
    expect(await Invoice.countDocuments({ paymentReference: request.paymentReference })).toBe(1);
    expect(await sequencesOf(2027)).toEqual([1]);
  });

  it('numbers each year from 1 again', async () => {
    const clock = new TestClock('2028-12-31T23:59:59Z');
    const accountId = await newAccount();
    const late = await issueInvoice(input(accountId), { clock });
    clock.advanceBy({ seconds: 2 });
    const early = await issueInvoice(input(accountId), { clock });
    const next = await issueInvoice(input(accountId), { clock });

    expect(late.number).toBe('ATL-2028-000001');
    expect(early.number).toBe('ATL-2029-000001');
    expect(next.number).toBe('ATL-2029-000002');
  });

  it('gives 30 invoices issued at once numbers 1..30, each once', async () => {
    const clock = new TestClock('2030-06-01T00:00:00Z');
    const accounts = await Promise.all([newAccount(), newAccount(), newAccount()]);

    // Mongoose's pool spreads these over several connections to the server.
    const invoices = await Promise.all(
      Array.from({ length: 30 }, (_, i) => issueInvoice(input(accounts[i % 3] ?? ''), { clock })),
    );

    expect(invoices.map((i) => i.sequence).sort((a, b) => a - b)).toEqual(oneTo(30));
    expect(new Set(invoices.map((i) => i.number)).size).toBe(30);
    expect(await sequencesOf(2030)).toEqual(oneTo(30));
    expect(await InvoiceCounter.findOne({ year: 2030 }).lean()).toMatchObject({
      last: 30,
      pending: null,
    });
  });

  it('refuses a payment reference that already has an invoice for another account', async () => {
    const clock = new TestClock('2031-01-01T00:00:00Z');
    const request = input(await newAccount());
    await issueInvoice(request, { clock });

    await expect(
      issueInvoice({ ...request, accountId: await newAccount() }, { clock }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('refuses an invoice without lines or with fractional amounts, and uses no number', async () => {
    const clock = new TestClock('2032-01-01T00:00:00Z');
    const accountId = await newAccount();

    await expect(issueInvoice(input(accountId, { lines: [] }), { clock })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    await expect(
      issueInvoice(
        input(accountId, { lines: [{ description: 'x', quantity: 1, unitMinor: 10.5 }] }),
        { clock },
      ),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect((await issueInvoice(input(accountId), { clock })).number).toBe('ATL-2032-000001');
  });
});

describe('computeInvoiceTotals', () => {
  it('adds the lines and splits the VAT out of the total so net + VAT = total', () => {
    const totals = computeInvoiceTotals(
      [
        { description: 'Starter plan', quantity: 2, unitMinor: 250_050 },
        { description: 'Extra location', quantity: 1, unitMinor: 99_999 },
      ],
      'NGN',
      { enabled: true, rateBps: 750 },
    );
    expect(totals.lines.map((l) => l.amountMinor)).toEqual([500_100, 99_999]);
    expect(totals.totalMinor).toBe(600_099);
    // 600,099 * 750 / 10,750 = 41,867.37 -> 41,867
    expect(totals.vatMinor).toBe(41_867);
    expect(totals.netMinor + totals.vatMinor).toBe(totals.totalMinor);
  });

  it('charges no VAT when VAT is off', () => {
    const totals = computeInvoiceTotals(
      [{ description: 'Trial deposit', quantity: 1, unitMinor: 100_000 }],
      'NGN',
      { enabled: false, rateBps: 750 },
    );
    expect(totals).toMatchObject({ totalMinor: 100_000, vatMinor: 0, netMinor: 100_000 });
  });
});

describe('a crash while numbering', () => {
  it('passes every named step in a normal run', async () => {
    const clock = new TestClock('2040-01-01T00:00:00Z');
    const faults = recordSteps();
    await issueInvoice(input(await newAccount()), { clock, faults });
    expect(faults.seen).toEqual([...INVOICE_STEPS]);
  });

  // Each step gets its own year, so each case starts with an empty counter.
  it.each(INVOICE_STEPS.map((step, index) => [step, 2041 + index] as const))(
    'at %s leaves no gap and no duplicate when the issue runs again alongside others',
    async (step, year) => {
      const clock = new TestClock(`${year}-02-01T00:00:00Z`);
      const accountId = await newAccount();
      const crashed = input(accountId);

      const faults = crashAt(step);
      await expect(issueInvoice(crashed, { clock, faults })).rejects.toBeInstanceOf(SimulatedCrash);
      expect(faults.crashed).toBe(true);

      const results = await Promise.all([
        issueInvoice(crashed, { clock }),
        issueInvoice(input(accountId), { clock }),
        issueInvoice(input(accountId), { clock }),
        issueInvoice(input(accountId), { clock }),
      ]);

      expect(results.map((i) => i.sequence).sort((a, b) => a - b)).toEqual(oneTo(4));
      expect(await sequencesOf(year)).toEqual(oneTo(4));
      expect(await Invoice.countDocuments({ paymentReference: crashed.paymentReference })).toBe(1);
      expect(await InvoiceCounter.findOne({ year }).lean()).toMatchObject({
        last: 4,
        pending: null,
      });
      // Once numbered, the crashed payment's invoice keeps its number.
      const again = await issueInvoice(crashed, { clock });
      expect(again.number).toBe(results[0]?.number);
    },
  );

  it('has the next issue finish a claim left by a dead process, so that number goes to its draft', async () => {
    const year = 2050;
    const clock = new TestClock(`${year}-01-10T00:00:00Z`);
    const accountId = await newAccount();
    const crashed = input(accountId);
    await expect(
      issueInvoice(crashed, { clock, faults: crashAt('invoice.number_claimed') }),
    ).rejects.toBeInstanceOf(SimulatedCrash);

    // The crashed payment is never issued again; other customers keep paying.
    const others = await Promise.all(
      Array.from({ length: 3 }, () => issueInvoice(input(accountId), { clock })),
    );

    const draft = await Invoice.findOne({ paymentReference: crashed.paymentReference }).lean();
    expect(draft?.sequence).toBe(1);
    expect(draft?.status).toBe('issued');
    expect(others.map((i) => i.sequence).sort((a, b) => a - b)).toEqual([2, 3, 4]);
  });

  it('numbers a draft left by a crash with the next issue of the year, in the order the drafts were made', async () => {
    const year = 2051;
    const clock = new TestClock(`${year}-01-10T00:00:00Z`);
    const accountId = await newAccount();
    const crashed = input(accountId);
    await expect(
      issueInvoice(crashed, { clock, faults: crashAt('invoice.draft_inserted') }),
    ).rejects.toBeInstanceOf(SimulatedCrash);
    const next = await issueInvoice(input(accountId), { clock });

    expect(next.number).toBe(`ATL-${year}-000002`);
    const stranded = await getInvoice(accountId, `ATL-${year}-000001`);
    expect(stranded?.paymentReference).toBe(crashed.paymentReference);
    expect(await sequencesOf(year)).toEqual([1, 2]);
    expect(await finishDraftInvoices({ clock })).toBe(0);
  });

  it('numbers a stranded draft with the backstop when no other issue comes', async () => {
    const year = 2053;
    const clock = new TestClock(`${year}-02-01T00:00:00Z`);
    const accountId = await newAccount();
    const crashed = input(accountId);
    await expect(
      issueInvoice(crashed, { clock, faults: crashAt('invoice.draft_inserted') }),
    ).rejects.toBeInstanceOf(SimulatedCrash);

    expect(await finishDraftInvoices({ clock })).toBe(1);
    expect((await getInvoice(accountId, `ATL-${year}-000001`))?.paymentReference).toBe(
      crashed.paymentReference,
    );
  });

  it('stays gap-free when crashes at every step hit many concurrent issues', async () => {
    const year = 2052;
    const clock = new TestClock(`${year}-05-01T00:00:00Z`);
    const accountId = await newAccount();
    const requests = Array.from({ length: 12 }, () => input(accountId));

    // Every third issue dies at some step, all at once.
    const first = await Promise.allSettled(
      requests.map((request, i) =>
        issueInvoice(request, {
          clock,
          faults:
            i % 3 === 0 ? crashAt(INVOICE_STEPS[(i / 3) % INVOICE_STEPS.length] ?? '') : undefined,
        }),
      ),
    );
    expect(first.some((r) => r.status === 'rejected')).toBe(true);

    const settled = await Promise.all(requests.map((request) => issueInvoice(request, { clock })));
    expect(settled.map((i) => i.sequence).sort((a, b) => a - b)).toEqual(oneTo(12));
    expect(await sequencesOf(year)).toEqual(oneTo(12));
  });
});

describe('listInvoices and getInvoice', () => {
  it("shows an account its own invoices, newest first, and never another account's", async () => {
    const clock = new TestClock('2060-04-01T00:00:00Z');
    const mine = await newAccount();
    const theirs = await newAccount();
    const a = await issueInvoice(input(mine), { clock });
    const b = await issueInvoice(input(theirs), { clock });
    const c = await issueInvoice(input(mine), { clock });

    expect((await listInvoices(mine)).map((i) => i.number)).toEqual([c.number, a.number]);
    expect((await getInvoice(mine, a.number))?.id).toBe(a.id);
    expect(await getInvoice(mine, b.number)).toBeNull();
    expect((await getInvoice(theirs, b.number.toLowerCase()))?.id).toBe(b.id);
  });
});

describe('credit notes', () => {
  it('take the next number of the same series and name the invoice they credit', async () => {
    const clock = new TestClock('2061-05-01T00:00:00Z');
    const accountId = await newAccount();
    const invoice = await issueInvoice(input(accountId), { clock });
    const note = await issueInvoice(
      input(accountId, {
        paymentReference: 'refund:0123456789abcdef01234567',
        kind: 'credit_note',
        credits: { invoiceNumber: invoice.number, paymentReference: invoice.paymentReference },
        lines: [{ description: 'Refund: Personal plan', quantity: 1, unitMinor: 400_000 }],
      }),
      { clock },
    );
    expect(note).toMatchObject({
      kind: 'credit_note',
      number: 'ATL-2061-000002',
      credits: { invoiceNumber: 'ATL-2061-000001', paymentReference: invoice.paymentReference },
      totalMinor: 400_000,
    });
    expect(invoice.kind).toBe('invoice');
    expect((await listInvoices(accountId)).map((i) => [i.kind, i.number])).toEqual([
      ['credit_note', 'ATL-2061-000002'],
      ['invoice', 'ATL-2061-000001'],
    ]);
  });

  it('cannot be issued without the invoice they credit', async () => {
    const clock = new TestClock('2062-05-01T00:00:00Z');
    await expect(
      issueInvoice(input(await newAccount(), { kind: 'credit_note' }), { clock }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
