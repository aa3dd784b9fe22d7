/**
 * Reads the text back out of an uncompressed pdfkit PDF, enough for tests:
 * pdfkit writes every text run as `[<hex> kerning <hex>] TJ`, in bytes of the
 * standard font's WinAnsi encoding, or in glyph ids of an embedded font whose
 * `/ToUnicode` CMap (a `bfrange` with an array) maps them back to characters.
 * https://opensource.adobe.com/dc-acrobat-sdk-docs/pdfstandards/PDF32000_2008.pdf (9.10.3)
 */
export function pdfText(pdf: Buffer): string[] {
  const objects = readObjects(pdf.toString('latin1'));

  // Resource name (F1) -> object id of the font -> its glyph map, if any. Only
  // dictionaries are searched: an embedded font's binary stream can contain
  // bytes that look like `/F1 12 0 R`.
  const fontObjectByName = new Map<string, string>();
  for (const body of objects.values()) {
    for (const match of dictionaryOf(body).matchAll(/\/(F\d+) (\d+) 0 R/g)) {
      fontObjectByName.set(match[1] ?? '', match[2] ?? '');
    }
  }
  const glyphMapOf = (fontName: string): Map<number, string> | null => {
    const fontBody = objects.get(fontObjectByName.get(fontName) ?? '') ?? '';
    const toUnicode = /\/ToUnicode (\d+) 0 R/.exec(fontBody)?.[1];
    if (toUnicode === undefined) return null;
    const cmap = objects.get(toUnicode) ?? '';
    const map = new Map<number, string>();
    for (const range of cmap.matchAll(/<([0-9a-f]+)> <[0-9a-f]+> \[([^\]]*)\]/gi)) {
      const start = parseInt(range[1] ?? '0', 16);
      [...(range[2] ?? '').matchAll(/<([0-9a-f]+)>/gi)].forEach((code, offset) => {
        map.set(start + offset, String.fromCodePoint(parseInt(code[1] ?? '0', 16)));
      });
    }
    // The other bfrange form, `<first> <last> <dst>`: consecutive codes to consecutive characters.
    for (const range of cmap.matchAll(/^<([0-9a-f]+)> <([0-9a-f]+)> <([0-9a-f]+)>$/gim)) {
      const first = parseInt(range[1] ?? '0', 16);
      const last = parseInt(range[2] ?? '0', 16);
      const dst = parseInt(range[3] ?? '0', 16);
      for (let code = first; code <= last; code += 1) {
        map.set(code, String.fromCodePoint(dst + code - first));
      }
    }
    return map;
  };

  const runs: string[] = [];
  for (const body of objects.values()) {
    if (!body.includes('stream')) continue;
    let glyphs: Map<number, string> | null = null;
    for (const token of body.matchAll(/\/(F\d+) [\d.]+ Tf|\[([^\]]*)\] TJ/g)) {
      if (token[1] !== undefined) {
        glyphs = glyphMapOf(token[1]);
        continue;
      }
      const hex = [...(token[2] ?? '').matchAll(/<([0-9a-f]*)>/gi)].map((m) => m[1]).join('');
      if (glyphs) {
        const map = glyphs;
        runs.push(
          (hex.match(/.{4}/g) ?? []).map((unit) => map.get(parseInt(unit, 16)) ?? '?').join(''),
        );
      } else {
        runs.push(Buffer.from(hex, 'hex').toString('latin1'));
      }
    }
  }
  return runs;
}

/**
 * The PDF's objects by number. Stream contents are skipped by their `/Length`,
 * so binary data (an embedded font) can never be mistaken for an object header.
 */
function readObjects(source: string): Map<string, string> {
  const objects = new Map<string, string>();
  const header = /(\d+) 0 obj/g;
  let match: RegExpExecArray | null;
  while ((match = header.exec(source)) !== null) {
    const start = match.index + match[0].length;
    const streamAt = source.indexOf('stream', start);
    const endAt = source.indexOf('endobj', start);
    let end = endAt;
    if (streamAt !== -1 && streamAt < endAt) {
      const length = Number(/\/Length (\d+)/.exec(source.slice(start, streamAt))?.[1] ?? NaN);
      if (Number.isFinite(length)) {
        const dataStart = source.indexOf('\n', streamAt) + 1;
        end = source.indexOf('endobj', dataStart + length);
      }
    }
    objects.set(match[1] ?? '', source.slice(start, end));
    header.lastIndex = end;
  }
  return objects;
}

/** An object's dictionary part (before any stream data). */
function dictionaryOf(body: string): string {
  const streamAt = body.indexOf('stream');
  return streamAt === -1 ? body : body.slice(0, streamAt);
}
