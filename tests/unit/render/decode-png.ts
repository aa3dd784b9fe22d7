/**
 * A small PNG reader for tests: checks the signature and every chunk's CRC,
 * reads IHDR and, for 8-bit non-interlaced images (what resvg and qrcode
 * write), inflates IDAT and undoes the row filters.
 * Spec: https://www.w3.org/TR/png-3/ (chunks §5, filters §7.3 and §9).
 */
import { crc32, inflateSync } from 'node:zlib';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
}

export interface DecodedPng extends PngHeader {
  /** The pixel's colour over a white background, as [red, green, blue], 0..255 each. */
  rgb(x: number, y: number): [number, number, number];
}

interface Chunk {
  type: string;
  data: Buffer;
}

function readChunks(png: Buffer): Chunk[] {
  if (!png.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('not a PNG: bad signature');
  const chunks: Chunk[] = [];
  let offset = 8;
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const typeAndData = png.subarray(offset + 4, offset + 8 + length);
    const crc = png.readUInt32BE(offset + 8 + length);
    if (crc32(typeAndData) !== crc) throw new Error(`bad CRC at offset ${offset}`);
    chunks.push({
      type: typeAndData.subarray(0, 4).toString('latin1'),
      data: typeAndData.subarray(4),
    });
    offset += 12 + length;
  }
  if (chunks[0]?.type !== 'IHDR') throw new Error('IHDR is not the first chunk');
  if (chunks[chunks.length - 1]?.type !== 'IEND') throw new Error('IEND is not the last chunk');
  return chunks;
}

export function readPngHeader(png: Buffer): PngHeader {
  const ihdr = readChunks(png)[0];
  if (!ihdr) throw new Error('no IHDR');
  return {
    width: ihdr.data.readUInt32BE(0),
    height: ihdr.data.readUInt32BE(4),
    bitDepth: ihdr.data.readUInt8(8),
    colorType: ihdr.data.readUInt8(9),
    interlace: ihdr.data.readUInt8(12),
  };
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

export function decodePng(png: Buffer): DecodedPng {
  const chunks = readChunks(png);
  const header = readPngHeader(png);
  const channels = CHANNELS[header.colorType];
  if (header.bitDepth !== 8 || header.interlace !== 0 || channels === undefined) {
    throw new Error(`unsupported PNG: ${JSON.stringify(header)}`);
  }
  const palette = chunks.find((c) => c.type === 'PLTE')?.data;
  const raw = inflateSync(
    Buffer.concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.data)),
  );
  const stride = header.width * channels;
  if (raw.length !== header.height * (stride + 1)) throw new Error('IDAT has the wrong size');
  const pixels = Buffer.alloc(header.height * stride);
  for (let y = 0; y < header.height; y++) {
    const filter = raw[y * (stride + 1)] ?? -1;
    if (filter < 0 || filter > 4) throw new Error(`bad filter type ${filter} in row ${y}`);
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i] ?? 0;
      const a = i >= channels ? (pixels[y * stride + i - channels] ?? 0) : 0;
      const b = y > 0 ? (pixels[(y - 1) * stride + i] ?? 0) : 0;
      const c = y > 0 && i >= channels ? (pixels[(y - 1) * stride + i - channels] ?? 0) : 0;
      let predictor = 0;
      if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = Math.floor((a + b) / 2);
      else if (filter === 4) predictor = paeth(a, b, c);
      pixels[y * stride + i] = (x + predictor) & 0xff;
    }
  }
  return {
    ...header,
    rgb(px, py) {
      const at = py * stride + px * channels;
      const value = (i: number): number => pixels[at + i] ?? 0;
      let colour: [number, number, number];
      let alpha = 255;
      if (header.colorType === 3) {
        const entry = value(0) * 3;
        colour = [palette?.[entry] ?? 0, palette?.[entry + 1] ?? 0, palette?.[entry + 2] ?? 0];
      } else if (channels >= 3) {
        colour = [value(0), value(1), value(2)];
        if (channels === 4) alpha = value(3);
      } else {
        colour = [value(0), value(0), value(0)];
        if (channels === 2) alpha = value(1);
      }
      const overWhite = (c: number): number => Math.round((c * alpha + 255 * (255 - alpha)) / 255);
      return [overWhite(colour[0]), overWhite(colour[1]), overWhite(colour[2])];
    },
  };
}
