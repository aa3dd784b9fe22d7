/**
 * The PDF of an issued invoice (receipt) or credit note, drawn with pdfkit.
 *
 * Font: the Naira sign (U+20A6) and the cedi sign (U+20B5) are not in the 14
 * standard PDF fonts (they only cover WinAnsi). When a TrueType font that has
 * them is found (DejaVu Sans, in the usual places Linux distributions put it)
 * it is embedded and amounts read `₦12,000.00`; otherwise the invoice falls
 * back to Helvetica and writes amounts with the ISO code, `NGN 12,000.00`.
 * A fresh machine is not guaranteed to have DejaVu (node:*-slim images have
 * no fonts at all), so both paths are supported and tested.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import PDFDocument from 'pdfkit';
import { CURRENCY_INFO, formatMoney, type Currency } from '../lib/money.js';
import type { IssuedInvoice } from './invoices.js';

export interface InvoiceFont {
  /** Path of a TrueType font with the currency signs. */
  regular: string;
  /** Its bold face; the regular face is used when absent. */
  bold?: string | undefined;
}

export interface RenderInvoiceOptions {
  /**
   * The font to embed. Unset: look for DejaVu Sans on this machine. `null`:
   * use the built-in Helvetica and write amounts as `NGN 12,000.00`.
   */
  font?: InvoiceFont | null;
  /** Deflate the page streams (default true; tests turn it off to read the text). */
  compress?: boolean;
}

/** Where distributions install DejaVu Sans (Debian/Ubuntu, Alpine, Arch, Fedora). */
const FONT_CANDIDATES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf',
];

let cachedFont: InvoiceFont | null | undefined;

/** The first DejaVu Sans found on this machine (looked up once), or null. */
export function findUnicodeFont(): InvoiceFont | null {
  if (cachedFont !== undefined) return cachedFont;
  const regular = FONT_CANDIDATES.find((path) => existsSync(path));
  if (regular === undefined) {
    cachedFont = null;
  } else {
    const bold = join(dirname(regular), 'DejaVuSans-Bold.ttf');
    cachedFont = { regular, bold: existsSync(bold) ? bold : undefined };
  }
  return cachedFont;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `1 Mar 2026` (UTC), built by hand so it does not depend on ICU data. */
export function formatInvoiceDate(date: Date): string {
  return `${date.getUTCDate()} ${MONTHS[date.getUTCMonth()] ?? ''} ${date.getUTCFullYear()}`;
}

/** `7.5%` from 750 basis points, without floats. */
export function formatRate(bps: number): string {
  const whole = Math.trunc(bps / 100);
  const fraction = String(bps % 100)
    .padStart(2, '0')
    .replace(/0+$/, '');
  return `${whole}${fraction === '' ? '' : `.${fraction}`}%`;
}

/** formatMoney, with the ISO code in place of a symbol the font cannot draw. */
export function formatInvoiceMoney(
  amountMinor: number,
  currency: Currency,
  hasUnicodeFont: boolean,
): string {
  const text = formatMoney({ amountMinor, currency });
  const { symbol } = CURRENCY_INFO[currency];
  if (hasUnicodeFont || /^[\x20-\x7e]*$/.test(symbol)) return text;
  return text.replace(symbol, `${currency} `);
}

/** Renders the invoice (or credit note) as a PDF. */
export function renderInvoicePdf(
  invoice: IssuedInvoice,
  options: RenderInvoiceOptions = {},
): Promise<Buffer> {
  const font = options.font === undefined ? findUnicodeFont() : options.font;
  const isCreditNote = invoice.kind === 'credit_note';
  return new Promise<Buffer>((resolve, reject) => {
    const doc = new PDFDocument({
      size: 'A4',
      margin: 50,
      compress: options.compress ?? true,
      info: {
        Title: `${isCreditNote ? 'Credit note' : 'Invoice'} ${invoice.number}`,
        Subject: isCreditNote
          ? `Credit note for invoice ${invoice.credits?.invoiceNumber ?? ''}`
          : `Receipt for payment ${invoice.paymentReference}`,
        Author: invoice.business.name,
        Keywords: invoice.number,
        // Fixed dates make the same invoice render to the same bytes.
        CreationDate: invoice.issuedAt,
        ModDate: invoice.issuedAt,
      },
    });
    const chunks: Buffer[] = [];
    doc.on('data', (chunk: Buffer) => chunks.push(chunk));
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);

    if (font) {
      doc.registerFont('body', font.regular);
      doc.registerFont('bold', font.bold ?? font.regular);
    } else {
      doc.registerFont('body', 'Helvetica');
      doc.registerFont('bold', 'Helvetica-Bold');
    }
    draw(doc, invoice, font !== null);
    doc.end();
  });
}

function draw(
  doc: InstanceType<typeof PDFDocument>,
  invoice: IssuedInvoice,
  hasUnicodeFont: boolean,
): void {
  const amount = (minor: number): string =>
    formatInvoiceMoney(minor, invoice.currency, hasUnicodeFont);
  const credited = invoice.kind === 'credit_note' ? (invoice.credits ?? null) : null;
  const left = doc.page.margins.left;
  const width = doc.page.width - doc.page.margins.left - doc.page.margins.right;

  // The business, top left; the document's identity, top right.
  const top = doc.y;
  const leftWidth = width * 0.45;
  doc.font('bold').fontSize(16).text(invoice.business.name, left, top, { width: leftWidth });
  doc.font('body').fontSize(9).text(invoice.business.address, { width: leftWidth });
  doc.text(invoice.business.email, { width: leftWidth });
  if (invoice.business.taxId) doc.text(`Tax ID: ${invoice.business.taxId}`, { width: leftWidth });
  const leftBottom = doc.y;

  const right = left + leftWidth;
  const rightWidth = width - leftWidth;
  doc
    .font('bold')
    .fontSize(16)
    .text(credited ? 'Credit note' : 'Invoice / Receipt', right, top, {
      width: rightWidth,
      align: 'right',
    });
  doc.font('body').fontSize(9);
  const identity = credited
    ? [
        `Number: ${invoice.number}`,
        `Date: ${formatInvoiceDate(invoice.issuedAt)}`,
        `Refunded: ${formatInvoiceDate(invoice.paidAt)}`,
        `Credits invoice: ${credited.invoiceNumber}`,
        `Payment reference: ${credited.paymentReference}`,
      ]
    : [
        `Number: ${invoice.number}`,
        `Date: ${formatInvoiceDate(invoice.issuedAt)}`,
        `Paid: ${formatInvoiceDate(invoice.paidAt)}`,
        `Payment reference: ${invoice.paymentReference}`,
      ];
  for (const line of identity) {
    doc.text(line, right, doc.y, { width: rightWidth, align: 'right' });
  }
  doc.y = Math.max(leftBottom, doc.y) + 20;

  // The customer.
  doc
    .font('bold')
    .fontSize(10)
    .text(credited ? 'Credited to' : 'Billed to', left, doc.y);
  doc.font('body').fontSize(9);
  const customerLines = [
    invoice.customer.name,
    invoice.customer.email,
    invoice.customer.phone,
  ].filter((value): value is string => typeof value === 'string' && value !== '');
  for (const line of customerLines.length > 0 ? customerLines : ['Customer']) doc.text(line);
  doc.moveDown(1.5);

  // Line items.
  const columns = [
    { title: 'Description', x: left, width: width * 0.46, align: 'left' as const },
    { title: 'Qty', x: left + width * 0.46, width: width * 0.1, align: 'right' as const },
    { title: 'Unit price', x: left + width * 0.56, width: width * 0.22, align: 'right' as const },
    { title: 'Amount', x: left + width * 0.78, width: width * 0.22, align: 'right' as const },
  ];
  const pageBottom = doc.page.height - doc.page.margins.bottom;
  const row = (cells: string[], bold = false): void => {
    if (doc.y > pageBottom - 40) doc.addPage();
    const y = doc.y;
    let bottom = y;
    doc.font(bold ? 'bold' : 'body').fontSize(9);
    columns.forEach((column, index) => {
      doc.text(cells[index] ?? '', column.x, y, { width: column.width, align: column.align });
      bottom = Math.max(bottom, doc.y);
    });
    doc.y = bottom + 4;
  };
  const rule = (): void => {
    doc
      .moveTo(left, doc.y)
      .lineTo(left + width, doc.y)
      .lineWidth(0.5)
      .strokeColor('#999999')
      .stroke();
    doc.y += 4;
  };
  row(
    columns.map((column) => column.title),
    true,
  );
  rule();
  for (const line of invoice.lines) {
    row([
      line.description,
      String(line.quantity),
      amount(line.unitMinor),
      amount(line.amountMinor),
    ]);
  }
  rule();

  // Totals, right-aligned under the amounts.
  const totalsRow = (label: string, value: string, bold = false): void => {
    if (doc.y > pageBottom - 40) doc.addPage();
    const y = doc.y;
    doc.font(bold ? 'bold' : 'body').fontSize(bold ? 11 : 9);
    doc.text(label, left + width * 0.4, y, { width: width * 0.38, align: 'right' });
    doc.text(value, left + width * 0.78, y, { width: width * 0.22, align: 'right' });
    doc.y += 2;
  };
  if (invoice.vat.enabled) {
    totalsRow('Net (excluding VAT)', amount(invoice.netMinor));
    totalsRow(`VAT ${formatRate(invoice.vat.rateBps)}`, amount(invoice.vatMinor));
  }
  totalsRow(credited ? 'Total credited' : 'Total paid', amount(invoice.totalMinor), true);

  doc.moveDown(2);
  doc
    .font('body')
    .fontSize(8)
    .fillColor('#555555')
    .text(footerOf(invoice, credited), left, doc.y, { width });
}

function footerOf(
  invoice: IssuedInvoice,
  credited: NonNullable<IssuedInvoice['credits']> | null,
): string {
  const vat = invoice.vat.enabled
    ? ` Amounts include VAT at ${formatRate(invoice.vat.rateBps)}.`
    : '';
  if (credited) {
    return `Refunded. This credit note reduces invoice ${credited.invoiceNumber} by the total above.${vat}`;
  }
  return invoice.vat.enabled
    ? `Paid in full. Prices include VAT at ${formatRate(invoice.vat.rateBps)}.`
    : 'Paid in full.';
}
