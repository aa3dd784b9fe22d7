import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import { ConfigError, ROLE_NAMES, loadConfig, selectRoles } from '../../../config/index.js';
import type { Config } from '../../../config/index.js';

let cwd: string;
beforeEach(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), 'atlantic-roles-'));
});
afterEach(async () => {
  await rm(cwd, { recursive: true, force: true });
});

function configWith(env: Record<string, string>): Config {
  return loadConfig(
    { JWT_SECRET: 'x'.repeat(32), PAYSTACK_SECRET_KEY: 'sk_test_1', ...env },
    { cwd },
  ).config;
}

describe('selectRoles', () => {
  it('without ROLES starts every available role that is configured, and says how to enable the rest', () => {
    const selection = selectRoles(configWith({}), ROLE_NAMES);
    expect(selection.start).toEqual(['api', 'proxy', 'jobs']);
    expect(selection.skipped).toEqual([
      { role: 'telegram', reason: 'set TELEGRAM_BOT_TOKEN to start the telegram role' },
      { role: 'whatsapp', reason: 'set WHATSAPP_ENABLED=true to start the whatsapp role' },
    ]);
  });

  it('without ROLES starts the chat roles once they are configured', () => {
    const config = configWith({ TELEGRAM_BOT_TOKEN: '1:abc', WHATSAPP_ENABLED: 'true' });
    expect(selectRoles(config, ROLE_NAMES)).toEqual({ start: [...ROLE_NAMES], skipped: [] });
  });

  it('without ROLES ignores roles this build does not have', () => {
    const selection = selectRoles(configWith({ TELEGRAM_BOT_TOKEN: '1:abc' }), ['jobs', 'api']);
    expect(selection).toEqual({ start: ['api', 'jobs'], skipped: [] });
  });

  it('with ROLES=-proxy starts every configured role but the gateway, and says why it left it out', () => {
    const config = configWith({ ROLES: '-proxy', TELEGRAM_BOT_TOKEN: '1:abc' });
    const selection = selectRoles(config, ROLE_NAMES);
    expect(selection.start).toEqual(['api', 'jobs', 'telegram']);
    expect(selection.skipped).toEqual([
      { role: 'proxy', reason: 'left out by ROLES=-proxy' },
      { role: 'whatsapp', reason: 'set WHATSAPP_ENABLED=true to start the whatsapp role' },
    ]);
  });

  it('refuses ROLES that both names roles and leaves some out', () => {
    expect(() => configWith({ ROLES: 'api,-proxy' })).toThrow(
      'either name the roles to run (api,jobs) or the roles to leave out (-proxy), not both',
    );
    expect(() => configWith({ ROLES: '-web' })).toThrow('unknown role "web"');
  });

  it('with ROLES starts exactly those roles', () => {
    const selection = selectRoles(configWith({ ROLES: 'jobs,api' }), ROLE_NAMES);
    expect(selection.start).toEqual(['api', 'jobs']);
    expect(selection.skipped.map((s) => s.role)).toEqual(['proxy', 'telegram', 'whatsapp']);
    expect(selection.skipped[0]?.reason).toBe('not named in ROLES=api,jobs');
  });

  it('with ROLES naming a role that is not built yet throws a ConfigError', () => {
    const config = configWith({ ROLES: 'api,proxy,telegram', TELEGRAM_BOT_TOKEN: '1:abc' });
    let caught: unknown;
    try {
      selectRoles(config, ['api', 'jobs']);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([
      'ROLES: names proxy, which this build does not include yet (available: api, jobs); remove it from ROLES',
      'ROLES: names telegram, which this build does not include yet (available: api, jobs); remove it from ROLES',
    ]);
  });
});
