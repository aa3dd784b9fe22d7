/**
 * The newcomer path: Atlantic starts on a fresh clone with no configuration at
 * all, serves health and metrics, keeps its data across a restart, stops
 * cleanly on SIGTERM, and refuses bad configuration with every problem listed.
 */
import net from 'node:net';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { afterEach, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { startAtlantic, type AtlanticProcess, type LogLine } from '../support/process.js';

const started: AtlanticProcess[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop('SIGKILL')));
});

function run(env: Record<string, string>): AtlanticProcess {
  const proc = startAtlantic(env);
  started.push(proc);
  return proc;
}

const isMsg = (msg: string) => (line: LogLine) => line.msg === msg;

describe('npm start on a fresh clone', () => {
  it('starts every configured role on the embedded database and answers health checks', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-e2e-'));
    const atlantic = run({
      DATA_DIR: dataDir,
      API_PORT: '0',
      SOCKS_PORT: '0',
      HTTP_PROXY_PORT: '0',
      LOG_LEVEL: 'info',
    });

    const listening = await atlantic.waitForLog(isMsg('api.listening'));
    const gateway = await atlantic.waitForLog(isMsg('proxy.listening'));
    await atlantic.waitForLog(isMsg('atlantic.started'));
    const base = `http://127.0.0.1:${String(listening.port)}`;

    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/readyz`);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { database: 'up' } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/process_cpu_user_seconds_total/);

    // The REST API is served with its description and the seeded catalogue.
    const openapi = (await (await fetch(`${base}/api/v1/openapi.json`)).json()) as {
      openapi: string;
    };
    expect(openapi.openapi).toBe('3.1.0');
    const plans = (await (await fetch(`${base}/api/v1/plans`)).json()) as {
      plans: { code: string }[];
    };
    expect(plans.plans.map((p) => p.code)).toContain('starter');
    const me = await fetch(`${base}/api/v1/me`);
    expect(me.status).toBe(401);

    // The gateway is up and is no open proxy: a client offering only "no authentication" is refused.
    const socks = net.connect(Number(gateway.socksPort), '127.0.0.1');
    socks.write(Buffer.from([0x05, 0x01, 0x00]));
    const [reply] = (await once(socks, 'data')) as [Buffer];
    expect([...reply]).toEqual([0x05, 0xff]);
    socks.destroy();

    // Roles without credentials are skipped with a hint, not started.
    const skipped = atlantic.logs.filter(isMsg('role.skipped')).map((l) => l.role);
    expect(skipped).toEqual(expect.arrayContaining(['telegram', 'whatsapp']));
    // Secrets were generated and announced, never printed.
    const secrets = JSON.parse(
      await readFile(path.join(dataDir, 'secrets.json'), 'utf8'),
    ) as Record<string, string>;
    expect(Object.keys(secrets)).toEqual(expect.arrayContaining(['JWT_SECRET']));
    expect((await stat(path.join(dataDir, 'secrets.json'))).mode & 0o777).toBe(0o600);
    const allOutput = JSON.stringify(atlantic.logs) + atlantic.stderr.join('\n');
    for (const value of Object.values(secrets)) expect(allOutput).not.toContain(value);

    expect(await atlantic.stop('SIGTERM')).toBe(0);
    expect(atlantic.logs.some(isMsg('shutdown.done'))).toBe(true);
  }, 60_000);

  it('keeps customers across a restart of the embedded database', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-e2e-'));
    const first = run({ DATA_DIR: dataDir, API_PORT: '0', ROLES: 'api' });
    const selected = await first.waitForLog(isMsg('database.selected'));
    await first.waitForLog(isMsg('atlantic.started'));

    const client = new MongoClient(String(selected.uri));
    await client.connect();
    await client.db('atlantic').collection('accounts').insertOne({ email: 'kept@example.com' });
    await client.close();
    expect(await first.stop('SIGTERM')).toBe(0);

    const second = run({ DATA_DIR: dataDir, API_PORT: '0', ROLES: 'api' });
    const again = await second.waitForLog(isMsg('database.selected'));
    await second.waitForLog(isMsg('atlantic.started'));
    const reader = new MongoClient(String(again.uri));
    await reader.connect();
    const kept = await reader.db('atlantic').collection('accounts').findOne({});
    await reader.close();
    expect(kept?.email).toBe('kept@example.com');
    expect(await second.stop('SIGTERM')).toBe(0);
  }, 60_000);
});

describe('bad configuration', () => {
  it('lists every problem at once and starts nothing', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-e2e-'));
    const atlantic = run({
      DATA_DIR: dataDir,
      API_PORT: 'eighty',
      WHATSAPP_ENABLED: 'maybe',
      ROLES: 'api,telegram',
    });

    expect(await atlantic.exited).toBe(1);
    const output = atlantic.stderr.join('\n');
    expect(output).toMatch(/API_PORT/);
    expect(output).toMatch(/WHATSAPP_ENABLED/);
    expect(output).toMatch(/TELEGRAM_BOT_TOKEN/);
    expect(atlantic.logs.some(isMsg('api.listening'))).toBe(false);
  }, 30_000);

  it('refuses production without MONGODB_URI and secrets, saying how to fix it', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atlantic-e2e-'));
    const atlantic = run({ DATA_DIR: dataDir, NODE_ENV: 'production' });

    expect(await atlantic.exited).toBe(1);
    const output = atlantic.stderr.join('\n');
    expect(output).toMatch(/MONGODB_URI/);
    expect(output).toMatch(/JWT_SECRET/);
    expect(output).toMatch(/PAYSTACK_SECRET_KEY/);
  }, 30_000);
});
