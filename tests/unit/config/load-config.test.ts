import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';

import { ConfigError, formatConfigError, loadConfig } from '../../../config/index.js';

const JWT = 'j'.repeat(40);
const PRODUCTION = {
  NODE_ENV: 'production',
  MONGODB_URI: 'mongodb://db:27017/atlantic',
  JWT_SECRET: JWT,
  PAYSTACK_SECRET_KEY: 'sk_live_abc123',
  PUBLIC_URL: 'https://atlantic.example.com',
  SMTP_URL: 'smtps://user:pw@smtp.example.com:465',
};

let cwd: string;
beforeEach(async () => {
  cwd = await mkdtemp(path.join(os.tmpdir(), 'atlantic-config-'));
});
afterEach(async () => {
  await rm(cwd, { recursive: true, force: true });
});

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env, { cwd });
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig on a fresh clone', () => {
  it('starts with no environment at all, with the documented defaults', () => {
    const { config } = loadConfig({}, { cwd });
    expect(config.nodeEnv).toBe('development');
    expect(config.isProduction).toBe(false);
    expect(config.dataDir).toBe(path.join(cwd, 'data'));
    expect(config.api.port).toBe(3000);
    expect(config.publicUrl).toBe('http://localhost:3000');
    expect(config.bindHost).toBe('0.0.0.0');
    expect(config.proxy).toEqual({
      socksPort: 1080,
      httpPort: 8080,
      allowPrivateTargets: false,
      httpsOnlyPorts: [443],
      blockedPorts: [25],
      publicHost: 'localhost',
    });
    expect(config.paystack.baseUrl).toBe('https://api.paystack.co');
    expect(config.telegram).toMatchObject({
      token: undefined,
      apiRoot: 'https://api.telegram.org',
      mode: 'polling',
      adminIds: [],
    });
    expect(config.whatsapp).toEqual({ enabled: false, pairingNumber: undefined, adminNumbers: [] });
    expect(config.mail).toEqual({ smtpUrl: undefined, from: 'Atlantic <no-reply@localhost>' });
    expect(config.log).toEqual({ level: 'info', pretty: false });
    expect(config.mongo).toEqual({ uri: undefined, systemBinary: undefined, download: true });
    expect(config.roles).toBeUndefined();
  });

  it('generates missing secrets once into DATA_DIR/secrets.json (0600) and reuses them', async () => {
    const first = loadConfig({ DATA_DIR: 'state' }, { cwd });
    const file = path.join(cwd, 'state', 'secrets.json');

    expect(first.config.auth.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(first.config.paystack.secretKey).toMatch(/^sk_test_local_[0-9a-f]{40}$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(stored.JWT_SECRET).toBe(first.config.auth.jwtSecret);

    // Warnings name the variable and the file, never the value.
    const warnings = first.warnings.join('\n');
    expect(warnings).toContain('JWT_SECRET');
    expect(warnings).toContain('PAYSTACK_SECRET_KEY');
    expect(warnings).toContain(file);
    expect(warnings).not.toContain(first.config.auth.jwtSecret);
    expect(warnings).not.toContain(first.config.paystack.secretKey);

    const second = loadConfig({ DATA_DIR: 'state' }, { cwd });
    expect(second.config.auth.jwtSecret).toBe(first.config.auth.jwtSecret);
    expect(second.config.paystack.secretKey).toBe(first.config.paystack.secretKey);
    expect(second.warnings.join('\n')).toMatch(
      /JWT_SECRET is not set: using the one generated earlier/,
    );
  });

  it('prefers secrets from the environment and writes no file for them', async () => {
    const { config, warnings } = loadConfig(
      { JWT_SECRET: JWT, PAYSTACK_SECRET_KEY: 'sk_test_abc' },
      { cwd },
    );
    expect(config.auth.jwtSecret).toBe(JWT);
    expect(config.paystack.secretKey).toBe('sk_test_abc');
    expect(warnings).toEqual([]);
    await expect(stat(path.join(cwd, 'data'))).rejects.toThrow();
  });

  it('tightens a secrets file other users can read', async () => {
    loadConfig({}, { cwd });
    const file = path.join(cwd, 'data', 'secrets.json');
    await chmod(file, 0o644);
    const { warnings } = loadConfig({}, { cwd });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(warnings.join('\n')).toContain('mode is now 0600');
  });

  it('names the file when a stored secret is unreadable', async () => {
    const file = path.join(cwd, 'data', 'secrets.json');
    loadConfig({}, { cwd });
    await writeFile(file, 'not json');
    expect(problemsOf({})[0]).toMatch(
      /JWT_SECRET, PAYSTACK_SECRET_KEY: not set, and .*secrets\.json cannot be read/,
    );
  });

  it('returns a deeply frozen config', () => {
    const { config } = loadConfig({ HTTPS_ONLY_PORTS: '443,8443' }, { cwd });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.api)).toBe(true);
    expect(Object.isFrozen(config.proxy.httpsOnlyPorts)).toBe(true);
    expect(() => {
      (config.api as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.proxy.httpsOnlyPorts as number[]).push(25);
    }).toThrow(TypeError);
  });
});

describe('loadConfig reads each variable', () => {
  it('parses ports, booleans, lists and URLs', () => {
    const { config } = loadConfig(
      {
        NODE_ENV: 'test',
        API_PORT: '0',
        SOCKS_PORT: '11080',
        HTTP_PROXY_PORT: '18080',
        BIND_HOST: '127.0.0.1',
        PUBLIC_URL: 'https://atl.example.com/',
        PAYSTACK_BASE_URL: 'http://127.0.0.1:4010/',
        TELEGRAM_BOT_TOKEN: '123456:ABC-def_ghi',
        TELEGRAM_API_ROOT: 'http://127.0.0.1:4020',
        WHATSAPP_ENABLED: '1',
        ALLOW_PRIVATE_TARGETS: 'TRUE',
        MONGOMS_DOWNLOAD: '0',
        MONGOMS_SYSTEM_BINARY: 'bin/mongod',
        HTTPS_ONLY_PORTS: '443, 8443,,443',
        ADMIN_TELEGRAM_IDS: '111,222',
        ADMIN_WHATSAPP_NUMBERS: '+2348012345678, 233201234567',
        LOG_LEVEL: 'debug',
        LOG_PRETTY: 'true',
        MAIL_FROM: 'Shop <shop@example.com>',
        ROLES: 'proxy, api',
        BLOCKED_PORTS: '25, 465',
        SMTP_URL: '',
        JWT_SECRET: JWT,
        PAYSTACK_SECRET_KEY: 'sk_test_x',
      },
      { cwd },
    );
    expect(config.isTest).toBe(true);
    expect(config.api.port).toBe(0);
    expect(config.proxy).toEqual({
      socksPort: 11080,
      httpPort: 18080,
      allowPrivateTargets: true,
      httpsOnlyPorts: [443, 8443],
      blockedPorts: [25, 465],
      publicHost: 'atl.example.com',
    });
    expect(config.bindHost).toBe('127.0.0.1');
    expect(config.publicUrl).toBe('https://atl.example.com');
    expect(config.paystack.baseUrl).toBe('http://127.0.0.1:4010');
    expect(config.telegram.token).toBe('123456:ABC-def_ghi');
    expect(config.telegram.apiRoot).toBe('http://127.0.0.1:4020');
    expect(config.telegram.adminIds).toEqual([111, 222]);
    expect(config.whatsapp.enabled).toBe(true);
    expect(config.whatsapp.adminNumbers).toEqual(['2348012345678', '233201234567']);
    expect(config.mongo).toEqual({
      uri: undefined,
      systemBinary: path.join(cwd, 'bin/mongod'),
      download: false,
    });
    expect(config.log).toEqual({ level: 'debug', pretty: true });
    expect(config.mail).toEqual({ smtpUrl: undefined, from: 'Shop <shop@example.com>' });
    // Start order is fixed, whatever order ROLES lists.
    expect(config.roles).toEqual(['api', 'proxy']);
  });

  it('defaults PUBLIC_URL to the API port', () => {
    const { config } = loadConfig({ API_PORT: '4000' }, { cwd });
    expect(config.publicUrl).toBe('http://localhost:4000');
  });

  it('names a bad port, a bad boolean and an unknown role, all at once', () => {
    const problems = problemsOf({
      API_PORT: 'eighty',
      SOCKS_PORT: '70000',
      WHATSAPP_ENABLED: 'yes',
      ALLOW_PRIVATE_TARGETS: 'maybe',
      ROLES: 'api,web',
      LOG_LEVEL: 'loud',
      NODE_ENV: 'staging',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'API_PORT: must be a port number from 0 to 65535 (0 picks a free port), got "eighty"',
        'SOCKS_PORT: must be a port number from 0 to 65535 (0 picks a free port), got "70000"',
        'WHATSAPP_ENABLED: must be true, false, 1 or 0, got "yes"',
        'ALLOW_PRIVATE_TARGETS: must be true, false, 1 or 0, got "maybe"',
        'ROLES: unknown role "web"; roles are api, proxy, jobs, telegram, whatsapp',
        'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
        'NODE_ENV: must be one of development, test, production, got "staging"',
      ]),
    );
    expect(problems).toHaveLength(7);
  });

  it('names bad lists, URLs and a short JWT secret without echoing secrets', () => {
    const problems = problemsOf({
      HTTPS_ONLY_PORTS: '443,abc,0',
      ADMIN_TELEGRAM_IDS: '12,@bob',
      ADMIN_WHATSAPP_NUMBERS: '08012345678',
      PAYSTACK_BASE_URL: 'ftp://paystack',
      PUBLIC_URL: 'not a url',
      SMTP_URL: 'mail.example.com:25 with-password',
      JWT_SECRET: 'short-secret',
      TELEGRAM_BOT_TOKEN: 'nonsense-token',
    });
    const text = problems.join('\n');
    expect(text).toContain(
      'HTTPS_ONLY_PORTS: must be a comma-separated list of ports from 1 to 65535',
    );
    expect(text).toContain('not valid: "abc", "0"');
    expect(text).toContain('ADMIN_TELEGRAM_IDS:');
    expect(text).toContain('"@bob"');
    expect(text).toContain('ADMIN_WHATSAPP_NUMBERS:');
    expect(text).toContain('PAYSTACK_BASE_URL: must start with http:// or https://');
    expect(text).toContain('PUBLIC_URL: must be a URL');
    expect(text).toContain('SMTP_URL: must start with smtp:// or smtps://');
    expect(text).toContain('JWT_SECRET: must be at least 32 characters');
    expect(text).toContain('TELEGRAM_BOT_TOKEN:');
    expect(text).not.toContain('short-secret');
    expect(text).not.toContain('with-password');
    expect(text).not.toContain('nonsense-token');
    expect(problems).toHaveLength(8);
  });

  it('treats empty and blank values as unset', () => {
    const { config } = loadConfig({ API_PORT: '', TELEGRAM_BOT_TOKEN: '  ', ROLES: '' }, { cwd });
    expect(config.api.port).toBe(3000);
    expect(config.telegram.token).toBeUndefined();
    expect(config.roles).toBeUndefined();
  });

  it('refuses ROLES naming telegram without a token, or whatsapp while disabled', () => {
    expect(problemsOf({ ROLES: 'api,telegram,whatsapp' })).toEqual([
      'ROLES: names telegram, but TELEGRAM_BOT_TOKEN is not set; set it to the token from @BotFather or remove telegram from ROLES',
      'ROLES: names whatsapp, but WHATSAPP_ENABLED is not true; set WHATSAPP_ENABLED=true or remove whatsapp from ROLES',
    ]);
  });

  it('generates a Telegram webhook secret only in webhook mode', () => {
    expect(loadConfig({}, { cwd }).config.telegram.webhookSecret).toBeUndefined();
    const { config } = loadConfig({ TELEGRAM_MODE: 'webhook' }, { cwd });
    expect(config.telegram.webhookSecret).toMatch(/^[A-Za-z0-9_-]{32,}$/);
  });
});

describe('loadConfig in production', () => {
  it('accepts a complete production environment without touching the disk', async () => {
    const { config, warnings } = loadConfig(PRODUCTION, { cwd });
    expect(config.isProduction).toBe(true);
    expect(config.mongo.uri).toBe('mongodb://db:27017/atlantic');
    expect(warnings).toEqual([]);
    await expect(stat(path.join(cwd, 'data'))).rejects.toThrow();
  });

  it('lists every missing requirement at once', () => {
    const problems = problemsOf({ NODE_ENV: 'production', API_PORT: 'x' });
    expect(problems).toEqual([
      'API_PORT: must be a port number from 0 to 65535 (0 picks a free port), got "x"',
      'MONGODB_URI: NODE_ENV=production needs MONGODB_URI: the embedded engines are for development and tests',
      'JWT_SECRET: required when NODE_ENV=production; set at least 32 random characters (e.g. `openssl rand -base64 48`)',
      'PAYSTACK_SECRET_KEY: required when NODE_ENV=production; use the secret key from the Paystack dashboard (Settings > API Keys & Webhooks)',
    ]);
  });

  it('never reads a secrets file generated for development', () => {
    loadConfig({}, { cwd });
    const problems = problemsOf({ NODE_ENV: 'production', MONGODB_URI: 'mongodb://db/atl' });
    expect(problems.map((p) => p.split(':')[0])).toEqual(['JWT_SECRET', 'PAYSTACK_SECRET_KEY']);
  });

  it('refuses a locally generated or non-secret Paystack key', () => {
    expect(problemsOf({ ...PRODUCTION, PAYSTACK_SECRET_KEY: 'sk_test_local_abc' })[0]).toMatch(
      /^PAYSTACK_SECRET_KEY: this is a key Atlantic generated/,
    );
    expect(problemsOf({ ...PRODUCTION, PAYSTACK_SECRET_KEY: 'pk_live_abc' })[0]).toMatch(
      /^PAYSTACK_SECRET_KEY: must be a Paystack secret key/,
    );
  });

  it('warns about a test key, a missing PUBLIC_URL or SMTP_URL, and private targets', () => {
    const { warnings } = loadConfig(
      {
        ...PRODUCTION,
        PAYSTACK_SECRET_KEY: 'sk_test_abc',
        PUBLIC_URL: undefined,
        SMTP_URL: undefined,
        ALLOW_PRIVATE_TARGETS: 'true',
      },
      { cwd },
    );
    expect(warnings.map((w) => w.split(' ')[0])).toEqual([
      'PAYSTACK_SECRET_KEY',
      'PUBLIC_URL',
      'SMTP_URL',
      'ALLOW_PRIVATE_TARGETS=true',
    ]);
  });
});

describe('formatConfigError', () => {
  it('lists every problem, one per line, and points at .env.example', () => {
    const text = formatConfigError(new ConfigError(['A: bad', 'B: worse']));
    expect(text).toBe(
      'Invalid configuration (2 problems):\n  - A: bad\n  - B: worse\nEvery variable is described in .env.example.',
    );
    expect(formatConfigError(new Error('disk full'))).toBe(
      'Configuration could not be loaded: disk full',
    );
  });
});
