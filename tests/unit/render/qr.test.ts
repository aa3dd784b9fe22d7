import { beforeAll, describe, expect, it } from '@jest/globals';
import QRCode from 'qrcode';

import { renderQrPng } from '../../../bot/render/qr.js';
import { PNG_SIGNATURE, decodePng } from './decode-png.js';

const PROXY_URL = 'socks5://u_7f3k2q:Zx9-pL4mQ2rT@gw1.atlantic.example:1080';

/**
 * No QR decoder is installed, so the picture is read back module by module and
 * compared with the symbol `qrcode` builds for the text at level M: equal
 * matrices mean a scanner reads the text back (the level is in the format bits).
 */
function readModules(text: string, buffer: Buffer): { size: number; dark: boolean[][] } {
  const png = decodePng(buffer);
  const { size } = QRCode.create(text, { errorCorrectionLevel: 'M' }).modules;
  const scale = png.width / (size + 4);
  const isDark = (x: number, y: number): boolean => png.rgb(x, y).every((c) => c < 128);
  const dark = Array.from({ length: size + 4 }, (_, row) =>
    Array.from({ length: size + 4 }, (__, col) =>
      isDark(Math.floor((col + 0.5) * scale), Math.floor((row + 0.5) * scale)),
    ),
  );
  return { size, dark };
}

describe('renderQrPng', () => {
  // Rendered once: pngjs, which qrcode writes PNGs with, is far slower under jest's VM modules.
  let buffer: Buffer;
  beforeAll(async () => {
    buffer = await renderQrPng(PROXY_URL);
  });

  it('draws a square PNG close to 512 px with whole pixels per module', () => {
    expect(buffer.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    const png = decodePng(buffer);
    const { size } = QRCode.create(PROXY_URL, { errorCorrectionLevel: 'M' }).modules;
    expect(png.width).toBe(png.height);
    expect(png.width).toBeLessThanOrEqual(512);
    expect(png.width).toBeGreaterThan(512 - (size + 4));
    expect(png.width % (size + 4)).toBe(0);
  });

  it('encodes the proxy URL at error correction M inside a two-module white margin', () => {
    const { size, dark } = readModules(PROXY_URL, buffer);
    const expected = QRCode.create(PROXY_URL, { errorCorrectionLevel: 'M' }).modules;
    const want = Array.from({ length: size + 4 }, (_, row) =>
      Array.from({ length: size + 4 }, (__, col) => {
        const inSymbol = row >= 2 && col >= 2 && row < size + 2 && col < size + 2;
        return inSymbol && Boolean(expected.get(row - 2, col - 2));
      }),
    );
    expect(dark).toEqual(want);
    // Level L would give a different symbol for the same text.
    const atL = QRCode.create(PROXY_URL, { errorCorrectionLevel: 'L' }).modules;
    const differsFromL = Array.from({ length: size * size }, (_, i) => i).some(
      (i) => Boolean(atL.data[i]) !== Boolean(expected.data[i]),
    );
    expect(differsFromL).toBe(true);
  });

  it('gives different pictures for different credentials', async () => {
    const other = 'socks5://u_7f3k2q:Zx9-pL4mQ2rU@gw1.atlantic.example:1080';
    const otherBuffer = await renderQrPng(other);
    expect(otherBuffer.equals(buffer)).toBe(false);
    expect(readModules(other, otherBuffer).dark).not.toEqual(readModules(PROXY_URL, buffer).dark);
  });
});
