import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { describe, expect, it } from '@jest/globals';

import { ENV_NAMES, loadConfig } from '../../../config/index.js';

async function readEnvExample(): Promise<Record<string, string>> {
  const text = await readFile(new URL('../../../.env.example', import.meta.url), 'utf8');
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (match?.[1] === undefined) continue;
    env[match[1]] = (match[2] ?? '').replace(/^"(.*)"$/, '$1');
  }
  return env;
}

describe('.env.example', () => {
  it('lists every variable the config reads, and nothing else', async () => {
    const env = await readEnvExample();
    expect(Object.keys(env).sort()).toEqual([...ENV_NAMES].sort());
  });

  it('is itself a valid configuration', async () => {
    const cwd = await mkdtemp(path.join(os.tmpdir(), 'atlantic-example-'));
    try {
      const { config } = loadConfig(await readEnvExample(), { cwd });
      expect(config.mail.from).toBe('Atlantic <no-reply@localhost>');
      expect(config.api.port).toBe(3000);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
