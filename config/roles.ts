import { ConfigError } from './config-error.js';

/** The processes Atlantic can run; start order follows this list. */
export const ROLE_NAMES = ['api', 'proxy', 'jobs', 'telegram', 'whatsapp'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

const roleSet: ReadonlySet<string> = new Set(ROLE_NAMES);

export function isRoleName(value: string): value is RoleName {
  return roleSet.has(value);
}

/** The parts of Config that decide which roles can start. */
export interface RoleConfig {
  readonly roles: readonly RoleName[] | undefined;
  /** Left out of "every configured role" when `roles` is undefined. */
  readonly excludedRoles?: readonly RoleName[];
  readonly telegram: { readonly token: string | undefined };
  readonly whatsapp: { readonly enabled: boolean };
}

export interface RoleSelection {
  /** Roles to start, in ROLE_NAMES order. */
  start: RoleName[];
  /** Roles that exist but will not start, each with what would enable it. */
  skipped: { role: RoleName; reason: string }[];
}

/** Why a role cannot start with this configuration, or undefined when it can. */
function missingSetting(config: RoleConfig, role: RoleName): string | undefined {
  switch (role) {
    case 'telegram':
      return config.telegram.token === undefined
        ? 'set TELEGRAM_BOT_TOKEN to start the telegram role'
        : undefined;
    case 'whatsapp':
      return config.whatsapp.enabled
        ? undefined
        : 'set WHATSAPP_ENABLED=true to start the whatsapp role';
    case 'api':
    case 'proxy':
    case 'jobs':
      return undefined;
  }
}

/**
 * Decides which roles this process starts. `available` is what main.ts has
 * built. With ROLES set, exactly those roles start (a role named there that is
 * not available is a ConfigError); without it, every available role that is
 * configured starts and the rest are reported with how to enable them.
 */
export function selectRoles(config: RoleConfig, available: readonly RoleName[]): RoleSelection {
  const availableSet = new Set(available);
  const ordered = ROLE_NAMES.filter((role) => availableSet.has(role));

  if (config.roles !== undefined) {
    const requested = new Set(config.roles);
    const missing = ROLE_NAMES.filter((role) => requested.has(role) && !availableSet.has(role));
    if (missing.length > 0) {
      throw new ConfigError(
        missing.map(
          (role) =>
            `ROLES: names ${role}, which this build does not include yet (available: ${ordered.join(', ') || 'none'}); remove it from ROLES`,
        ),
      );
    }
    // loadConfig already refused ROLES naming a role that is not configured.
    return {
      start: ordered.filter((role) => requested.has(role)),
      skipped: ordered
        .filter((role) => !requested.has(role))
        .map((role) => ({ role, reason: `not named in ROLES=${config.roles?.join(',') ?? ''}` })),
    };
  }

  const selection: RoleSelection = { start: [], skipped: [] };
  const excluded = new Set(config.excludedRoles ?? []);
  for (const role of ordered) {
    const reason = excluded.has(role)
      ? `left out by ROLES=${[...excluded].map((name) => `-${name}`).join(',')}`
      : missingSetting(config, role);
    if (reason === undefined) selection.start.push(role);
    else selection.skipped.push({ role, reason });
  }
  return selection;
}

/** Problems with ROLES naming a role whose settings are missing (used by loadConfig). */
export function roleProblems(config: RoleConfig): string[] {
  if (config.roles === undefined) return [];
  const problems: string[] = [];
  for (const role of config.roles) {
    if (role === 'telegram' && config.telegram.token === undefined) {
      problems.push(
        'ROLES: names telegram, but TELEGRAM_BOT_TOKEN is not set; set it to the token from @BotFather or remove telegram from ROLES',
      );
    }
    if (role === 'whatsapp' && !config.whatsapp.enabled) {
      problems.push(
        'ROLES: names whatsapp, but WHATSAPP_ENABLED is not true; set WHATSAPP_ENABLED=true or remove whatsapp from ROLES',
      );
    }
  }
  return problems;
}
