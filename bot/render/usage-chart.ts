/**
 * The usage chart the bots send as a picture: bytes per UTC day over the last
 * 7 or 30 days, drawn as an SVG here and rasterised by resvg (no canvas, no
 * chart library, no browser).
 *
 * Flow: hourly buckets -> `dailyTotals` (one total per UTC day, oldest first)
 * -> `usageChartSvg` (layout, a rounded y scale, labels) -> `renderUsageChart`
 * (PNG, 800 px wide).
 *
 * Text needs a font on the machine: resvg reads the system fonts and draws no
 * text at all when there are none. The runtime image installs Debian's
 * `fonts-dejavu-core`; DejaVu Sans is asked for first, with common sans fonts
 * after it for machines that lack it.
 */
import { renderAsync } from '@resvg/resvg-js';

import { formatBytes } from './gauges.js';

const DAY_MS = 86_400_000;

export interface HourlyBytes {
  /** Start of the UTC hour, as in `listUsageBuckets`. */
  hourStart: Date;
  /** Bytes in that hour; for a usage bucket, `bytesUp + bytesDown`. */
  bytes: number;
}

export interface DailyTotal {
  /** Midnight UTC starting the day. */
  dayStart: Date;
  bytes: number;
}

function utcDayStartMs(at: Date): number {
  return Math.floor(at.getTime() / DAY_MS) * DAY_MS;
}

/**
 * One total per UTC day for the `days` days ending with `end`'s UTC day
 * (that whole day, including hours after `end`), oldest first, days without
 * use included as 0. Buckets outside those days are ignored. Several rows for
 * one hour (one per location) simply add up; the ALL_LOCATIONS rows carry no
 * bytes, so they need no filtering.
 */
export function dailyTotals(
  buckets: readonly HourlyBytes[],
  days: number,
  end: Date,
): DailyTotal[] {
  if (!Number.isSafeInteger(days) || days < 1) {
    throw new RangeError(`days must be a positive integer, got ${days}`);
  }
  const firstDayMs = utcDayStartMs(end) - (days - 1) * DAY_MS;
  const totals = Array.from({ length: days }, () => 0);
  for (const bucket of buckets) {
    const index = (utcDayStartMs(bucket.hourStart) - firstDayMs) / DAY_MS;
    if (index >= 0 && index < days) totals[index] = (totals[index] ?? 0) + bucket.bytes;
  }
  return totals.map((bytes, index) => ({
    dayStart: new Date(firstDayMs + index * DAY_MS),
    bytes,
  }));
}

export interface UsageChartInput {
  /** How many UTC days to show, ending with `end`'s day. */
  days: 7 | 30;
  /** The chart ends with this instant's UTC day (usually now). */
  end: Date;
  /** Hourly byte counts; rows outside the charted days are ignored. */
  buckets: readonly HourlyBytes[];
  /**
   * The allowance for the charted span, in bytes (a weekly quota goes with a
   * 7-day chart). Drawn as a dashed line at `quotaBytes / days`: the daily
   * pace that would use it up exactly by the end. Absent or null: no line.
   */
  quotaBytes?: number | null;
  /** Shown before the total; defaults to "Usage, last N days". */
  title?: string;
}

// Layout in SVG user units; the PNG is rendered at this width.
const WIDTH = 800;
const HEIGHT = 400;
const PLOT_LEFT = 80;
const PLOT_RIGHT = 776;
const PLOT_TOP = 84;
const PLOT_BOTTOM = 332;
const BAR_FILL_SHARE = 0.7;

/** DejaVu Sans first (Debian's fonts-dejavu-core), then what other systems usually have. */
const FONT_FAMILY = "'DejaVu Sans', 'Liberation Sans', 'Noto Sans', Arial, Helvetica, sans-serif";
const PREFERRED_FONT = 'DejaVu Sans';

const COLORS = {
  background: '#ffffff',
  text: '#111827',
  muted: '#6b7280',
  grid: '#e5e7eb',
  axis: '#9ca3af',
  bar: '#2563eb',
  quota: '#dc2626',
} as const;

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = [
  'Jan',
  'Feb',
  'Mar',
  'Apr',
  'May',
  'Jun',
  'Jul',
  'Aug',
  'Sep',
  'Oct',
  'Nov',
  'Dec',
] as const;

function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function monthName(day: Date): string {
  return MONTHS[day.getUTCMonth()] ?? '';
}

function shortDate(day: Date): string {
  return `${day.getUTCDate()} ${monthName(day)}`;
}

/** An empty chart still gets a scale, one a plan would use. */
const EMPTY_SCALE_TOP_BYTES = 1e9;

interface Scale {
  stepBytes: number;
  topBytes: number;
}

/**
 * A y scale from 0 with about four steps of 1, 2, 2.5 or 5 times a power of
 * ten bytes. Units are powers of 1000, so those steps stay round in MB or GB.
 */
function niceScale(maxBytes: number): Scale {
  const max = maxBytes > 0 ? maxBytes : EMPTY_SCALE_TOP_BYTES;
  const rawStep = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rawStep));
  const normalized = rawStep / magnitude;
  const factor = [1, 2, 2.5, 5].find((f) => normalized <= f * (1 + 1e-9)) ?? 10;
  const stepBytes = Math.max(1, factor * magnitude);
  return { stepBytes, topBytes: Math.ceil(max / stepBytes - 1e-9) * stepBytes };
}

const AXIS_UNITS = [
  { unit: 'GB', bytes: 1e9 },
  { unit: 'MB', bytes: 1e6 },
  { unit: 'kB', bytes: 1e3 },
  { unit: 'B', bytes: 1 },
] as const;

/** Tick labels share the unit of the top of the scale: 0, 0.5 GB, 1 GB, 1.5 GB. */
function tickLabeler(topBytes: number): (bytes: number) => string {
  const { unit, bytes: unitBytes } = AXIS_UNITS.find((u) => topBytes >= u.bytes) ?? {
    unit: 'B',
    bytes: 1,
  };
  // toPrecision drops float noise such as 0.30000000000000004.
  return (bytes) => (bytes === 0 ? '0' : `${Number((bytes / unitBytes).toPrecision(10))} ${unit}`);
}

function text(
  x: number,
  y: number,
  content: string,
  attributes: Record<string, string | number> = {},
): string {
  const extra = Object.entries(attributes)
    .map(([name, value]) => ` ${name}="${escapeXml(String(value))}"`)
    .join('');
  return `<text x="${x}" y="${y}"${extra}>${escapeXml(content)}</text>`;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/**
 * The chart as an SVG document (800 x 400 user units). Each day has a
 * `class="day-label"` text; each day with use has a `class="bar"` rect with
 * `data-day` (YYYY-MM-DD) and `data-bytes`. Without use it says "No usage yet".
 */
export function usageChartSvg(input: UsageChartInput): string {
  const totals = dailyTotals(input.buckets, input.days, input.end);
  const totalBytes = totals.reduce((sum, day) => sum + day.bytes, 0);
  const maxDayBytes = Math.max(0, ...totals.map((day) => day.bytes));
  const dailyQuotaBytes =
    input.quotaBytes !== undefined && input.quotaBytes !== null && input.quotaBytes > 0
      ? input.quotaBytes / input.days
      : null;
  const scale = niceScale(Math.max(maxDayBytes, dailyQuotaBytes ?? 0));
  const tickLabel = tickLabeler(scale.topBytes);
  const plotHeight = PLOT_BOTTOM - PLOT_TOP;
  const yOf = (bytes: number): number =>
    round2(PLOT_BOTTOM - (Math.min(bytes, scale.topBytes) / scale.topBytes) * plotHeight);

  const parts: string[] = [];
  parts.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="${COLORS.background}"/>`);

  const title = input.title ?? `Usage, last ${input.days} days`;
  parts.push(
    text(24, 36, `${title}: ${formatBytes(totalBytes)}`, {
      class: 'title',
      'font-size': 22,
      'font-weight': 'bold',
      fill: COLORS.text,
    }),
  );
  const first = totals[0]?.dayStart ?? input.end;
  const last = totals[totals.length - 1]?.dayStart ?? input.end;
  const firstYear =
    first.getUTCFullYear() === last.getUTCFullYear() ? '' : ` ${first.getUTCFullYear()}`;
  let subtitle = `${shortDate(first)}${firstYear} – ${shortDate(last)} ${last.getUTCFullYear()}, UTC days`;
  if (dailyQuotaBytes !== null) {
    subtitle += ` · dashed: ${formatBytes(dailyQuotaBytes)} a day uses the quota evenly`;
  }
  parts.push(text(24, 60, subtitle, { class: 'subtitle', 'font-size': 14, fill: COLORS.muted }));

  // Grid lines and y labels.
  const tickCount = Math.round(scale.topBytes / scale.stepBytes);
  for (let index = 0; index <= tickCount; index++) {
    const tick = index * scale.stepBytes;
    const y = yOf(tick);
    parts.push(
      `<line class="grid" x1="${PLOT_LEFT}" y1="${y}" x2="${PLOT_RIGHT}" y2="${y}" stroke="${tick === 0 ? COLORS.axis : COLORS.grid}" stroke-width="1"/>`,
      text(PLOT_LEFT - 8, y + 4, tickLabel(tick), {
        class: 'y-label',
        'font-size': 12,
        'text-anchor': 'end',
        fill: COLORS.muted,
      }),
    );
  }

  // Bars and day labels. Seven days get weekday and date; thirty get the day of
  // the month, with the month's name under the first day and under each 1st.
  const slot = (PLOT_RIGHT - PLOT_LEFT) / totals.length;
  const barWidth = round2(slot * BAR_FILL_SHARE);
  totals.forEach((day, index) => {
    const centre = round2(PLOT_LEFT + slot * (index + 0.5));
    if (day.bytes > 0) {
      // At least one unit tall, so a day with a few kilobytes still shows.
      const top = Math.min(yOf(day.bytes), PLOT_BOTTOM - 1);
      parts.push(
        `<rect class="bar" data-day="${day.dayStart.toISOString().slice(0, 10)}" data-bytes="${day.bytes}" x="${round2(centre - barWidth / 2)}" y="${top}" width="${barWidth}" height="${round2(PLOT_BOTTOM - top)}" fill="${COLORS.bar}"/>`,
      );
    }
    const labelStyle = { 'font-size': 12, 'text-anchor': 'middle', fill: COLORS.muted };
    if (totals.length <= 7) {
      parts.push(
        text(centre, PLOT_BOTTOM + 20, WEEKDAYS[day.dayStart.getUTCDay()] ?? '', {
          class: 'day-label',
          ...labelStyle,
        }),
        text(centre, PLOT_BOTTOM + 36, shortDate(day.dayStart), {
          class: 'date-label',
          ...labelStyle,
        }),
      );
    } else {
      parts.push(
        text(centre, PLOT_BOTTOM + 20, String(day.dayStart.getUTCDate()), {
          class: 'day-label',
          ...labelStyle,
        }),
      );
      if (index === 0 || day.dayStart.getUTCDate() === 1) {
        parts.push(
          text(centre, PLOT_BOTTOM + 36, monthName(day.dayStart), {
            class: 'month-label',
            ...labelStyle,
          }),
        );
      }
    }
  });

  if (dailyQuotaBytes !== null) {
    const y = yOf(dailyQuotaBytes);
    parts.push(
      `<line class="quota" x1="${PLOT_LEFT}" y1="${y}" x2="${PLOT_RIGHT}" y2="${y}" stroke="${COLORS.quota}" stroke-width="2" stroke-dasharray="8 6"/>`,
    );
  }

  if (totalBytes === 0) {
    parts.push(
      text(
        round2((PLOT_LEFT + PLOT_RIGHT) / 2),
        round2((PLOT_TOP + PLOT_BOTTOM) / 2),
        'No usage yet',
        {
          class: 'empty',
          'font-size': 24,
          'text-anchor': 'middle',
          fill: COLORS.muted,
        },
      ),
    );
  }

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="${escapeXml(FONT_FAMILY)}">`,
    ...parts,
    '</svg>',
  ].join('\n');
}

/** The chart as a PNG 800 px wide (400 px high), rendered off the main thread. */
export async function renderUsageChart(input: UsageChartInput): Promise<Buffer> {
  const image = await renderAsync(usageChartSvg(input), {
    fitTo: { mode: 'width', value: WIDTH },
    background: COLORS.background,
    font: {
      loadSystemFonts: true,
      defaultFontFamily: PREFERRED_FONT,
      sansSerifFamily: PREFERRED_FONT,
    },
    // resvg writes its warnings (a missing font family) straight to stderr, past our logger.
    logLevel: 'off',
  });
  return image.asPng();
}
