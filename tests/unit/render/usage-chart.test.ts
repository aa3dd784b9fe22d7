import { describe, expect, it } from '@jest/globals';
import { Resvg } from '@resvg/resvg-js';

import {
  dailyTotals,
  renderUsageChart,
  usageChartSvg,
  type HourlyBytes,
} from '../../../bot/render/usage-chart.js';
import { PNG_SIGNATURE, decodePng, readPngHeader } from './decode-png.js';

const GB = 1e9;
const MB = 1e6;

function at(iso: string): Date {
  return new Date(iso);
}

/** Text of every `<text class="…">` with that class, in document order. */
function texts(svg: string, className: string): string[] {
  const pattern = new RegExp(`<text[^>]* class="${className}"[^>]*>([^<]*)</text>`, 'g');
  return [...svg.matchAll(pattern)].map((match) => match[1] ?? '');
}

interface BarRect {
  day: string;
  bytes: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

function bars(svg: string): BarRect[] {
  const pattern =
    /<rect class="bar" data-day="([^"]+)" data-bytes="([^"]+)" x="([^"]+)" y="([^"]+)" width="([^"]+)" height="([^"]+)"/g;
  return [...svg.matchAll(pattern)].map((m) => ({
    day: m[1] ?? '',
    bytes: Number(m[2]),
    x: Number(m[3]),
    y: Number(m[4]),
    width: Number(m[5]),
    height: Number(m[6]),
  }));
}

/** Whether resvg finds any font here at all; without one it silently draws no text. */
function systemHasAFont(): boolean {
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg" width="60" height="60"><rect width="60" height="60" fill="#fff"/><text x="5" y="50" font-size="48">H</text></svg>';
  const png = decodePng(new Resvg(svg, { logLevel: 'off' }).render().asPng());
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < png.width; x++) if (png.rgb(x, y)[0] < 128) return true;
  }
  return false;
}

describe('dailyTotals', () => {
  it('adds hourly rows into UTC days, split exactly at midnight UTC', () => {
    const buckets: HourlyBytes[] = [
      { hourStart: at('2025-03-07T22:00:00Z'), bytes: 100 },
      { hourStart: at('2025-03-07T23:00:00Z'), bytes: 20 },
      { hourStart: at('2025-03-08T00:00:00Z'), bytes: 3 },
      // A second location in the same hour adds up; the ALL_LOCATIONS row carries 0 bytes.
      { hourStart: at('2025-03-08T00:00:00Z'), bytes: 4 },
      { hourStart: at('2025-03-08T00:00:00Z'), bytes: 0 },
      { hourStart: at('2025-03-09T23:00:00Z'), bytes: 5 },
    ];
    const totals = dailyTotals(buckets, 3, at('2025-03-09T00:30:00Z'));
    expect(totals.map((d) => [d.dayStart.toISOString(), d.bytes])).toEqual([
      ['2025-03-07T00:00:00.000Z', 120],
      ['2025-03-08T00:00:00.000Z', 7],
      // The end's whole UTC day counts, hours after `end` included.
      ['2025-03-09T00:00:00.000Z', 5],
    ]);
  });

  it('ignores rows before the first day and after the last, and keeps empty days as 0', () => {
    const buckets: HourlyBytes[] = [
      { hourStart: at('2025-03-02T23:00:00Z'), bytes: 1 },
      { hourStart: at('2025-03-05T12:00:00Z'), bytes: 9 },
      { hourStart: at('2025-03-10T00:00:00Z'), bytes: 1 },
    ];
    const totals = dailyTotals(buckets, 7, at('2025-03-09T23:59:59Z'));
    expect(totals.map((d) => d.bytes)).toEqual([0, 0, 9, 0, 0, 0, 0]);
    expect(totals[0]?.dayStart.toISOString()).toBe('2025-03-03T00:00:00.000Z');
  });

  it('refuses a span that is not a positive whole number of days', () => {
    expect(() => dailyTotals([], 0, at('2025-03-09T00:00:00Z'))).toThrow(RangeError);
    expect(() => dailyTotals([], 1.5, at('2025-03-09T00:00:00Z'))).toThrow(RangeError);
  });
});

describe('usageChartSvg', () => {
  const end = at('2025-03-09T15:20:00Z'); // a Sunday

  it('draws a bar for each day with use and labels all seven days', () => {
    const svg = usageChartSvg({
      days: 7,
      end,
      buckets: [
        { hourStart: at('2025-03-03T10:00:00Z'), bytes: 1.2 * GB },
        { hourStart: at('2025-03-05T23:00:00Z'), bytes: 0.5 * GB },
        { hourStart: at('2025-03-06T00:00:00Z'), bytes: 0.65 * GB },
        { hourStart: at('2025-03-09T14:00:00Z'), bytes: 2.35 * GB },
      ],
    });
    expect(bars(svg).map((b) => [b.day, b.bytes])).toEqual([
      ['2025-03-03', 1.2 * GB],
      ['2025-03-05', 0.5 * GB],
      ['2025-03-06', 0.65 * GB],
      ['2025-03-09', 2.35 * GB],
    ]);
    expect(texts(svg, 'day-label')).toEqual(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']);
    expect(texts(svg, 'date-label')).toEqual([
      '3 Mar',
      '4 Mar',
      '5 Mar',
      '6 Mar',
      '7 Mar',
      '8 Mar',
      '9 Mar',
    ]);
    expect(texts(svg, 'title')).toEqual(['Usage, last 7 days: 4.7 GB']);
    expect(texts(svg, 'empty')).toEqual([]);
  });

  it('draws taller bars for bigger days, all from the same baseline', () => {
    const svg = usageChartSvg({
      days: 7,
      end,
      buckets: [
        { hourStart: at('2025-03-04T10:00:00Z'), bytes: 1 * GB },
        { hourStart: at('2025-03-05T10:00:00Z'), bytes: 2 * GB },
        { hourStart: at('2025-03-06T10:00:00Z'), bytes: 1 * MB },
      ],
    });
    const [one, two, tiny] = bars(svg);
    expect(two?.height).toBeCloseTo(2 * (one?.height ?? 0), 1);
    expect(one && one.y + one.height).toBeCloseTo((two?.y ?? 0) + (two?.height ?? 0), 5);
    // A day with a megabyte next to gigabytes is still visible.
    expect(tiny?.height).toBeGreaterThanOrEqual(1);
  });

  it.each([
    [2.35 * GB, ['0', '1 GB', '2 GB', '3 GB']],
    [1.5 * GB, ['0', '0.5 GB', '1 GB', '1.5 GB']],
    [0.9 * GB, ['0', '0.25 GB', '0.5 GB', '0.75 GB', '1 GB']],
    [1.2 * MB, ['0', '0.5 MB', '1 MB', '1.5 MB']],
    [3000, ['0', '1 kB', '2 kB', '3 kB']],
    [3, ['0', '1 B', '2 B', '3 B']],
  ])('puts round y ticks above a busiest day of %p bytes', (bytes, ticks) => {
    const svg = usageChartSvg({
      days: 7,
      end,
      buckets: [{ hourStart: at('2025-03-08T08:00:00Z'), bytes }],
    });
    expect(texts(svg, 'y-label')).toEqual(ticks);
  });

  it('labels thirty days by day of month, naming the month at the start and on the 1st', () => {
    const buckets = Array.from({ length: 30 * 24 }, (_, hour) => ({
      hourStart: new Date(Date.UTC(2025, 1, 8) + hour * 3_600_000),
      bytes: 10 * MB,
    }));
    const svg = usageChartSvg({ days: 30, end, buckets });
    const dayLabels = texts(svg, 'day-label');
    expect(dayLabels).toHaveLength(30);
    expect(dayLabels.slice(0, 3)).toEqual(['8', '9', '10']);
    expect(dayLabels.slice(-3)).toEqual(['7', '8', '9']);
    expect(texts(svg, 'month-label')).toEqual(['Feb', 'Mar']);
    expect(bars(svg)).toHaveLength(30);
    expect(bars(svg).every((b) => b.bytes === 240 * MB)).toBe(true);
    expect(texts(svg, 'title')).toEqual(['Usage, last 30 days: 7.2 GB']);
    expect(texts(svg, 'subtitle')).toEqual(['8 Feb – 9 Mar 2025, UTC days']);
  });

  it('says "No usage yet" and draws no bars when nothing was used', () => {
    const svg = usageChartSvg({ days: 7, end, buckets: [] });
    expect(texts(svg, 'empty')).toEqual(['No usage yet']);
    expect(bars(svg)).toEqual([]);
    expect(texts(svg, 'day-label')).toHaveLength(7);
    expect(texts(svg, 'title')).toEqual(['Usage, last 7 days: 0 B']);
  });

  it('draws the even daily pace of a quota as a dashed line, and none without one', () => {
    const withQuota = usageChartSvg({
      days: 7,
      end,
      buckets: [{ hourStart: at('2025-03-08T08:00:00Z'), bytes: 0.5 * GB }],
      quotaBytes: 14 * GB,
    });
    expect(withQuota.match(/<line class="quota"[^>]*stroke-dasharray/g)).toHaveLength(1);
    expect(texts(withQuota, 'subtitle')[0]).toContain('2 GB a day uses the quota evenly');
    // The scale reaches the line even when every day is far below it.
    expect(texts(withQuota, 'y-label').at(-1)).toBe('2 GB');

    for (const quotaBytes of [undefined, null, 0]) {
      const svg = usageChartSvg({ days: 7, end, buckets: [], quotaBytes });
      expect(svg).not.toContain('class="quota"');
    }
  });

  it('escapes a caller title and names the years of a span across New Year', () => {
    const svg = usageChartSvg({
      days: 7,
      end: at('2026-01-02T10:00:00Z'),
      buckets: [],
      title: 'Alice & <Bob>',
    });
    expect(svg).toContain('>Alice &amp; &lt;Bob&gt;: 0 B</text>');
    expect(texts(svg, 'subtitle')).toEqual(['27 Dec 2025 – 2 Jan 2026, UTC days']);
  });
});

describe('renderUsageChart', () => {
  const end = at('2025-03-09T15:20:00Z');
  const input = {
    days: 7 as const,
    end,
    buckets: [
      { hourStart: at('2025-03-04T10:00:00Z'), bytes: 1.5 * GB },
      { hourStart: at('2025-03-08T10:00:00Z'), bytes: 0.4 * GB },
    ],
    quotaBytes: 10 * GB,
  };

  it('renders an 800 x 400 PNG', async () => {
    const buffer = await renderUsageChart(input);
    expect(buffer.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    expect(readPngHeader(buffer)).toMatchObject({ width: 800, height: 400 });
  });

  it('renders an empty chart too', async () => {
    const buffer = await renderUsageChart({ days: 30, end, buckets: [] });
    expect(readPngHeader(buffer)).toMatchObject({ width: 800, height: 400 });
  });

  it('paints each bar where the SVG puts it, in blue on white', async () => {
    const png = decodePng(await renderUsageChart(input));
    const svg = usageChartSvg(input);
    const drawn = bars(svg);
    expect(drawn).toHaveLength(2);
    for (const bar of drawn) {
      const [r, g, b] = png.rgb(
        Math.round(bar.x + bar.width / 2),
        Math.round(bar.y + bar.height / 2),
      );
      expect(b).toBeGreaterThan(200);
      expect(r).toBeLessThan(100);
      expect(g).toBeLessThan(150);
    }
    expect(png.rgb(2, 2)).toEqual([255, 255, 255]);
  });

  // Text needs a system font (Debian: fonts-dejavu-core); a machine without any
  // draws charts without words, so this test is skipped there rather than red.
  (systemHasAFont() ? it : it.skip)('draws the title text', async () => {
    const png = decodePng(await renderUsageChart(input));
    const title = /<text x="([\d.]+)" y="([\d.]+)" class="title" font-size="(\d+)"/.exec(
      usageChartSvg(input),
    );
    const [x, y, size] = [Number(title?.[1]), Number(title?.[2]), Number(title?.[3])];
    let inked = 0;
    for (let py = y - size; py <= y; py++) {
      for (let px = x; px < x + 300; px++) if (png.rgb(px, py)[0] < 128) inked += 1;
    }
    expect(inked).toBeGreaterThan(200);
  });
});
