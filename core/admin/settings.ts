/**
 * Business settings for admins (ARCHITECTURE.md, "Settings"): read them all,
 * change one. core/settings.ts validates a change against the whole set and
 * keeps its own history; this adds the admin check and the audit trail, and
 * reads a value typed in a chat (`graceDays 5`, `vat.enabled on`,
 * `dunningOffsetsHours 24,72`, `trialDepositMinor 2,000.00`) by the type of
 * the setting it changes.
 */
import { DomainError } from '../../lib/errors.js';
import { parseMajorUnits } from '../../lib/money.js';
import type { BusinessSettings, Settings, SettingsChanges, SettingsStore } from '../settings.js';
import { audited, entry, recordView, requireAdmin, type AdminContext } from './context.js';

/** Every setting an admin can name: top-level fields and the parts of `vat` and `business`. */
export function settingPaths(settings: BusinessSettings): string[] {
  const paths: string[] = [];
  for (const [key, value] of Object.entries(settings)) {
    if (key === 'vat' || key === 'business') {
      for (const part of Object.keys(value as object)) paths.push(`${key}.${part}`);
    } else {
      paths.push(key);
    }
  }
  if (!paths.includes('business.taxId')) paths.push('business.taxId');
  return paths;
}

/** The current value at `path` (`vat.rateBps`), or undefined. */
export function settingValue(settings: BusinessSettings, path: string): unknown {
  const [head = '', part] = path.split('.');
  const top = (settings as unknown as Record<string, unknown>)[head];
  if (part === undefined) return top;
  return top && typeof top === 'object' ? (top as Record<string, unknown>)[part] : undefined;
}

function invalid(path: string, message: string): DomainError {
  return new DomainError('VALIDATION_FAILED', `${path}: ${message}`, { details: { field: path } });
}

/**
 * The change that sets `path` to what `text` says, read by the type of the
 * current value: whole numbers (amounts of money, for names ending in
 * `Minor`, in major units of the business currency), on/off, lists of whole
 * numbers separated by commas, or text. core/settings.ts then checks ranges
 * and rules.
 */
export function settingChangeFromText(
  settings: BusinessSettings,
  path: string,
  text: string,
): SettingsChanges {
  const [head = '', part] = path.split('.');
  if (!settingPaths(settings).includes(path)) {
    throw new DomainError('VALIDATION_FAILED', `There is no setting "${path}".`, {
      details: { field: path },
    });
  }
  const raw = text.trim();
  const current = settingValue(settings, path);
  let value: unknown;
  if (typeof current === 'number') {
    if (path.endsWith('Minor')) {
      value = parseMajorUnits(raw, settings.currency);
    } else if (/^-?\d+$/.test(raw.replaceAll(',', ''))) {
      value = Number(raw.replaceAll(',', ''));
    } else {
      throw invalid(path, 'a whole number, please.');
    }
  } else if (typeof current === 'boolean') {
    const lower = raw.toLowerCase();
    if (['on', 'true', 'yes', '1'].includes(lower)) value = true;
    else if (['off', 'false', 'no', '0'].includes(lower)) value = false;
    else throw invalid(path, 'on or off, please.');
  } else if (Array.isArray(current)) {
    const items = raw.split(/[\s,]+/).filter((item) => item !== '');
    if (!items.every((item) => /^\d+$/.test(item))) {
      throw invalid(path, 'whole numbers separated by commas, please.');
    }
    value = items.map(Number);
  } else {
    value = head === 'currency' ? raw.toUpperCase() : raw;
  }
  return part === undefined ? { [head]: value } : { [head]: { [part]: value } };
}

/** Every business setting; recorded as `settings.viewed`. */
export async function getSettingsForAdmin(
  ctx: AdminContext,
  store: SettingsStore,
): Promise<Settings> {
  await requireAdmin(ctx, 'settings.view');
  const settings = await store.get();
  await recordView(ctx, 'settings.viewed', { kind: 'settings', id: 'business' });
  return settings;
}

/** Applies an admin's change; recorded as `settings.changed` with the changes. */
export async function updateSettingsAsAdmin(
  ctx: AdminContext,
  store: SettingsStore,
  changes: SettingsChanges,
): Promise<Settings> {
  await requireAdmin(ctx, 'settings.update');
  const before = await store.get();
  const changed = Object.keys(changes);
  const from = Object.fromEntries(
    changed.map((key) => [key, (before as unknown as Record<string, unknown>)[key]]),
  );
  return audited(
    ctx,
    entry(
      ctx,
      'settings.changed',
      { kind: 'settings', id: 'business' },
      { changes, from, version: before.version },
    ),
    () => store.update(changes, { actor: ctx.actor.accountId }),
  );
}
