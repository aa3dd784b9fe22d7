import { describe, expect, it } from '@jest/globals';
import { TestClock } from '../../../lib/clock.js';
import { issueInvoice, type IssuedInvoice } from '../../../core/invoices.js';
import {
  findUnicodeFont,
  formatInvoiceMoney,
  formatRate,
  renderInvoicePdf,
} from '../../../core/invoice-pdf.js';
import { Account } from '../../../models/account.js';
import { useTestDatabase } from '../../support/database.js';
import { pdfText } from './pdf-text.js';

useTestDatabase();

/**
 * A fixed reference per invoice: the embedded font's glyph set then does not
 * depend on random characters (pdf-text.ts decodes the common ToUnicode forms,
 * not every one pdfkit can write).
 */
let issuedCount = 0;

async function issued(): Promise<IssuedInvoice> {
  const account = await Account.create({});
  issuedCount += 1;
  return issueInvoice(
    {
      accountId: account._id.toHexString(),
      paymentReference: `atl-pdf-${String(issuedCount).padStart(4, '0')}`,
      customer: { name: 'Ada Obi', email: 'ada@example.com', phone: '+2348000000001' },
      lines: [
        { description: 'Personal plan, 1 month', quantity: 1, unitMinor: 1_200_000 },
        { description: 'Extra location', quantity: 2, unitMinor: 150_000 },
      ],
      currency: 'NGN',
      vat: { enabled: true, rateBps: 750 },
      business: {
        name: 'Atlantic Networks Ltd',
        address: '12 Marina Road, Lagos',
        email: 'billing@atlantic.example',
        taxId: 'TIN-0001',
      },
      paidAt: new Date('2026-03-01T10:00:00Z'),
    },
    { clock: new TestClock('2026-03-01T10:00:05Z') },
  );
}

describe('renderInvoicePdf', () => {
  it('writes a PDF titled with the invoice number', async () => {
    const invoice = await issued();
    const pdf = await renderInvoicePdf(invoice);

    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    // The document info dictionary is never compressed.
    expect(pdf.toString('latin1')).toContain(`Invoice ${invoice.number}`);
  });

  it('shows business, customer, number, dates, lines, VAT and total, in naira when a font has ₦', async () => {
    const font = findUnicodeFont();
    if (!font) {
      // Nothing to embed on this machine; the fallback test below covers the rendering.
      expect(font).toBeNull();
      return;
    }
    const invoice = await issued();
    const text = pdfText(await renderInvoicePdf(invoice, { font, compress: false })).join('\n');

    for (const expected of [
      'Atlantic Networks Ltd',
      'Tax ID: TIN-0001',
      'Ada Obi',
      '+2348000000001',
      `Number: ${invoice.number}`,
      'Date: 1 Mar 2026',
      'Personal plan, 1 month',
      '₦12,000.00',
      '₦3,000.00',
      'VAT 7.5%',
      '₦1,046.51',
      'Total paid',
      '₦15,000.00',
    ]) {
      expect(text).toContain(expected);
    }
  });

  it('falls back to Helvetica and NGN amounts when no font with ₦ is available', async () => {
    const invoice = await issued();
    const text = pdfText(await renderInvoicePdf(invoice, { font: null, compress: false })).join(
      '\n',
    );

    expect(text).toContain(`Number: ${invoice.number}`);
    expect(text).toContain('NGN 15,000.00');
    expect(text).toContain('NGN 13,953.49');
    expect(text).not.toContain('₦');
  });

  it('renders the same invoice to the same bytes', async () => {
    const invoice = await issued();
    const [a, b] = await Promise.all([renderInvoicePdf(invoice), renderInvoicePdf(invoice)]);
    expect(a.equals(b)).toBe(true);
  });
});

describe('invoice formatting', () => {
  it('writes rates from basis points without floats', () => {
    expect([750, 1250, 1000, 5, 0].map(formatRate)).toEqual([
      '7.5%',
      '12.5%',
      '10%',
      '0.05%',
      '0%',
    ]);
  });

  it('keeps ASCII symbols and spells out ₦ and GH₵ without a Unicode font', () => {
    expect(formatInvoiceMoney(1_200_000, 'NGN', true)).toBe('₦12,000.00');
    expect(formatInvoiceMoney(1_200_000, 'NGN', false)).toBe('NGN 12,000.00');
    expect(formatInvoiceMoney(-5_000, 'NGN', false)).toBe('-NGN 50.00');
    expect(formatInvoiceMoney(99, 'GHS', false)).toBe('GHS 0.99');
    expect(formatInvoiceMoney(1_000, 'USD', false)).toBe('$10.00');
  });
});
