/**
 * docker-compose.yml, the Dockerfile, .env.example and the README cannot be run
 * here (no Docker engine), so this test reads them and checks they agree with
 * the configuration schema and the real build: a production config built from
 * compose's environment must load, the published ports must be the configured
 * ones, and the image must run the file `npm run build` produces.
 */
import os from 'node:os';
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { ENV_NAMES, ROLE_NAMES, loadConfig, selectRoles } from '../../config/index.js';

const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');

interface ComposeService {
  image?: string;
  command?: string[];
  build?: string | { context: string };
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

// Merge keys (`<<: *anchor`) as docker compose reads them.
const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as Compose;
const app = compose.services.atlantic;
const gateway = compose.services.gateway;
const mongo = compose.services.mongo;

/** Resolves compose's `${VAR:?message}` (a value the operator must give) and `${VAR:-default}`. */
function resolveComposeValue(name: string, value: string): string {
  const required: Record<string, string> = {
    PUBLIC_URL: 'https://proxy.example.com',
    JWT_SECRET: 'x'.repeat(48),
    PAYSTACK_SECRET_KEY: 'sk_live_0123456789abcdef',
  };
  return value
    .replace(/\$\{(\w+):\?[^}]*\}/g, (_m, v: string) => {
      const given = required[v];
      if (given === undefined) throw new Error(`${name}: no sample value for required ${v}`);
      return given;
    })
    .replace(/\$\{(\w+):-([^}]*)\}/g, (_m, _v: string, fallback: string) => fallback);
}

function composeEnvironment(service = app): Record<string, string> {
  if (!service?.environment) throw new Error('the service has no environment');
  return Object.fromEntries(
    Object.entries(service.environment).map(([name, value]) => [
      name,
      resolveComposeValue(name, String(value)),
    ]),
  );
}

/** Dockerfile instructions as [keyword, rest] pairs, continuation lines joined. */
function dockerInstructions(): [string, string][] {
  return read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return [keyword.toUpperCase(), rest.join(' ')];
    });
}

describe('docker-compose.yml', () => {
  it('starts MongoDB with a health check and a volume, and Atlantic after it is healthy', () => {
    expect(mongo?.image).toMatch(/^mongo:\d/);
    expect(mongo?.healthcheck?.test.join(' ')).toMatch(/ping/);
    expect(mongo?.volumes?.some((v) => v.endsWith(':/data/db'))).toBe(true);
    expect(app?.depends_on?.mongo?.condition).toBe('service_healthy');
    expect(app?.build).toBe('.');
    for (const volume of [...(mongo?.volumes ?? []), ...(app?.volumes ?? [])]) {
      const named = volume.split(':')[0] ?? '';
      expect(Object.keys(compose.volumes ?? {})).toContain(named);
    }
  });

  it('gives Atlantic a production configuration that loads without a problem', () => {
    const env = composeEnvironment();
    for (const name of Object.keys(env)) expect(ENV_NAMES).toContain(name);
    expect(env.NODE_ENV).toBe('production');
    expect(env.MONGODB_URI).toMatch(/^mongodb:\/\/mongo:27017\//);

    const cwd = mkdtempSync(path.join(os.tmpdir(), 'atlantic-compose-'));
    const { config } = loadConfig(env, { cwd });
    expect(config.isProduction).toBe(true);
    expect(config.dataDir).toBe('/app/data');
  });

  it('runs the gateway in a process of its own and every other configured role in the other', () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'atlantic-compose-'));
    const appConfig = loadConfig(composeEnvironment(app), { cwd }).config;
    const gatewayConfig = loadConfig(composeEnvironment(gateway), { cwd }).config;
    expect(selectRoles(appConfig, ROLE_NAMES).start).toEqual(['api', 'jobs']);
    expect(selectRoles(gatewayConfig, ROLE_NAMES).start).toEqual(['proxy']);
    // With a bot token, the chat role joins the api and jobs, not the gateway.
    const withBot = { ...composeEnvironment(app), TELEGRAM_BOT_TOKEN: '1:abc' };
    expect(selectRoles(loadConfig(withBot, { cwd }).config, ROLE_NAMES).start).toEqual([
      'api',
      'jobs',
      'telegram',
    ]);
    expect(gateway?.build).toBe('.');
    expect(gateway?.depends_on?.mongo?.condition).toBe('service_healthy');
    // Same settings but ROLES: both read one database with one configuration.
    const { ROLES: _appRoles, ...shared } = composeEnvironment(app);
    const { ROLES: _gatewayRoles, ...gatewayShared } = composeEnvironment(gateway);
    expect(gatewayShared).toEqual(shared);
  });

  it('publishes exactly the ports each process listens on', () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'atlantic-compose-'));
    const { config } = loadConfig(composeEnvironment(app), { cwd });
    const published = (service: ComposeService | undefined): number[] =>
      (service?.ports ?? []).map((p) => Number(p.split(':').at(-1))).sort();
    expect(published(app)).toEqual([config.api.port]);
    expect(published(gateway)).toEqual([config.proxy.socksPort, config.proxy.httpPort].sort());
  });
});

describe('Dockerfile', () => {
  const instructions = dockerInstructions();
  const stages = instructions.filter(([k]) => k === 'FROM');
  const runtimeStart = instructions.findIndex((entry) => entry === stages.at(-1));
  const runtime = instructions.slice(runtimeStart);

  it('builds in one stage and runs as a non-root user in another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const user = runtime.filter(([k]) => k === 'USER').at(-1)?.[1];
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)$/);
    expect(runtime.some(([k, rest]) => k === 'ENV' && /NODE_ENV=production/.test(rest))).toBe(true);
  });

  it('copies only files that exist, including every folder the build compiles', () => {
    const build = instructions.slice(0, runtimeStart);
    const sources = build
      .filter(([k]) => k === 'COPY')
      .flatMap(([, rest]) =>
        rest
          .split(/\s+/)
          .filter((t) => !t.startsWith('--'))
          .slice(0, -1),
      );
    for (const source of sources) expect(existsSync(path.join(root, source))).toBe(true);

    const tsconfig = JSON.parse(read('tsconfig.build.json')) as { include: string[] };
    for (const included of tsconfig.include) {
      expect(sources.map((s) => s.replace(/\/$/, ''))).toContain(included);
    }
  });

  it('runs the entry point that npm run build produces, as npm start does', () => {
    const tsconfig = JSON.parse(read('tsconfig.build.json')) as {
      compilerOptions?: { outDir?: string };
    };
    const base = JSON.parse(read('tsconfig.json')) as { compilerOptions: { outDir: string } };
    const outDir = tsconfig.compilerOptions?.outDir ?? base.compilerOptions.outDir;
    const entry = `${outDir}/main.js`;

    const cmd = JSON.parse(runtime.filter(([k]) => k === 'CMD').at(-1)?.[1] ?? '[]') as string[];
    expect(cmd).toEqual(['node', entry]);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`node ${entry}`);
    // The gateway's service caps V8's young generation (2 MB semi-spaces) so an
    // idle gateway's memory stays with its tunnels (proxy/README.md, Speed).
    expect(gateway?.command).toEqual(['node', '--max-semi-space-size=2', entry]);
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
    expect(
      runtime.some(
        ([k, rest]) => k === 'COPY' && rest.includes('--from=build') && rest.includes(outDir),
      ),
    ).toBe(true);
  });

  it('exposes the configured default ports', () => {
    const { config } = loadConfig({}, { cwd: mkdtempSync(path.join(os.tmpdir(), 'atlantic-')) });
    const exposed = runtime
      .filter(([k]) => k === 'EXPOSE')
      .flatMap(([, rest]) => rest.split(/\s+/).map(Number));
    expect(exposed.sort()).toEqual(
      [config.api.port, config.proxy.socksPort, config.proxy.httpPort].sort(),
    );
  });
});

describe('documentation of the configuration', () => {
  it('lists every variable in .env.example and in the README', () => {
    const example = read('.env.example');
    const readme = read('README.md');
    const documented = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect([...new Set(documented)].sort()).toEqual([...ENV_NAMES].sort());
    for (const name of ENV_NAMES) expect(readme).toContain(`\`${name}\``);
  });
});
