/**
 * Agenda, Baileys and proxy-chain ship only as ES modules. The project is native
 * ESM so that they load as they are, in jest as in `node dist/main.js`; this test
 * fails the moment a config change breaks that for any later role.
 */
import { describe, expect, it } from '@jest/globals';

describe('ESM-only dependencies', () => {
  it('loads Agenda and its MongoDB backend', async () => {
    const { Agenda } = await import('agenda');
    const { MongoBackend } = await import('@agendajs/mongo-backend');
    expect(typeof Agenda).toBe('function');
    expect(typeof MongoBackend).toBe('function');
  });

  it('loads Baileys with its auth-state helpers', async () => {
    const baileys = await import('@whiskeysockets/baileys');
    expect(typeof baileys.default).toBe('function');
    expect(typeof baileys.initAuthCreds).toBe('function');
    expect(typeof baileys.BufferJSON.replacer).toBe('function');
  });

  it('loads proxy-chain (a benchmark peer for the gateway)', async () => {
    const proxyChain = await import('proxy-chain');
    expect(typeof proxyChain.Server).toBe('function');
  });
});
