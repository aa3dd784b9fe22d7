import { beforeAll, describe, expect, it } from '@jest/globals';
import {
  addExit,
  addLocation,
  listLocations,
  markExitHealth,
  removeExit,
  removeLocation,
  updateLocation,
} from '../../../../core/locations.js';
import { seedPlans } from '../../../../core/plans.js';
import { TestClock } from '../../../../lib/clock.js';
import { useTestDatabase } from '../../../support/database.js';
import { grantOf, newCustomer, request, useControllers, waitUntil } from './harness.js';

const clock = new TestClock('2026-03-02T10:00:00.000Z');
const controllers = useControllers(clock);
useTestDatabase();

beforeAll(async () => {
  await seedPlans(clock);
});

describe('location admin', () => {
  it('adds a location, changes its label and city, and removes it', async () => {
    const added = await addLocation({ countryCode: ' DE ', city: 'Berlin', label: 'Germany' });
    expect(added).toMatchObject({
      code: 'de',
      countryCode: 'de',
      city: 'Berlin',
      label: 'Germany',
      exits: [],
    });
    await expect(addLocation({ countryCode: 'de', label: 'Again' })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    // A second location in the same country needs its own code.
    expect(
      await addLocation({ code: 'de2', countryCode: 'de', city: 'Frankfurt', label: 'Germany 2' }),
    ).toMatchObject({ code: 'de2', countryCode: 'de' });

    expect(
      await updateLocation('DE', { label: 'Germany (Berlin)', city: 'Berlin-Mitte' }),
    ).toMatchObject({ code: 'de', label: 'Germany (Berlin)', city: 'Berlin-Mitte' });

    await removeLocation('de2');
    expect((await listLocations()).map((location) => location.code)).not.toContain('de2');
    await expect(removeLocation('de2')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(updateLocation('de2', { label: 'x' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('refuses a location or exit that a customer could not use', async () => {
    await expect(addLocation({ countryCode: 'deu', label: 'Germany' })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'countryCode' },
    });
    await expect(
      addLocation({ code: 'fr-paris', countryCode: 'fr', label: 'Paris' }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', details: { field: 'code' } });
    await expect(addLocation({ countryCode: 'fr', label: '  ' })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'label' },
    });

    await addLocation({ countryCode: 'it', label: 'Italy' });
    await expect(
      addExit('it', { exitId: 'up1', kind: 'socks5', port: 1080 }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', details: { field: 'host' } });
    await expect(
      addExit('it', { exitId: 'up1', kind: 'http', host: 'proxy.example', port: 70_000 }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', details: { field: 'port' } });
    await expect(addExit('it', { exitId: 'bad id', kind: 'direct' })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: { field: 'exitId' },
    });
    await expect(addExit('zz', { exitId: 'direct', kind: 'direct' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('adds and removes exits of a pool', async () => {
    await addLocation({ countryCode: 'es', label: 'Spain' });
    await addExit('es', { exitId: 'direct', kind: 'direct' });
    const pool = await addExit('es', {
      exitId: 'up1',
      kind: 'socks5',
      host: ' 192.0.2.10 ',
      port: 1080,
      username: 'u',
      password: 'p',
    });
    expect(pool.exits).toEqual([
      expect.objectContaining({ exitId: 'direct', kind: 'direct', healthy: true, failures: 0 }),
      expect.objectContaining({
        exitId: 'up1',
        kind: 'socks5',
        host: '192.0.2.10',
        port: 1080,
        username: 'u',
        healthy: true,
      }),
    ]);
    await expect(addExit('es', { exitId: 'up1', kind: 'direct' })).rejects.toMatchObject({
      code: 'CONFLICT',
    });

    const after = await removeExit('es', 'direct');
    expect(after.exits.map((exit) => exit.exitId)).toEqual(['up1']);
    await expect(removeExit('es', 'direct')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('marks an exit unhealthy with the error and retry time, and healthy again', async () => {
    await addLocation({ countryCode: 'pt', label: 'Portugal' });
    await addExit('pt', { exitId: 'up1', kind: 'http', host: 'proxy.example', port: 3128 });
    const exitOf = async () =>
      (await listLocations()).find((l) => l.code === 'pt')?.exits.find((e) => e.exitId === 'up1');

    await markExitHealth(
      'pt',
      'up1',
      { healthy: false, error: 'connect ECONNREFUSED', retryMs: 60_000 },
      { clock },
    );
    await markExitHealth('pt', 'up1', { healthy: false, error: 'timed out' }, { clock });
    expect(await exitOf()).toMatchObject({
      healthy: false,
      failures: 2,
      lastError: 'timed out',
      retryAfter: new Date('2026-03-02T10:00:30.000Z'),
    });

    await markExitHealth('pt', 'up1', { healthy: true }, { clock });
    const healed = await exitOf();
    expect(healed).toMatchObject({ healthy: true, failures: 0 });
    expect(healed?.retryAfter).toBeUndefined();
    await expect(markExitHealth('pt', 'nope', { healthy: true }, { clock })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('counts every failure when several gateways report the same exit at once', async () => {
    await addLocation({ countryCode: 'pl', label: 'Poland' });
    await addExit('pl', { exitId: 'up1', kind: 'socks5', host: 'proxy.example', port: 1080 });
    await Promise.all(
      Array.from({ length: 4 }, () =>
        markExitHealth('pl', 'up1', { healthy: false, error: 'refused' }, { clock }),
      ),
    );
    const exit = (await listLocations()).find((l) => l.code === 'pl')?.exits[0];
    expect(exit).toMatchObject({ healthy: false, failures: 4 });
  });

  it('lists every location with its pool, by code', async () => {
    const codes = (await listLocations()).map((location) => location.code);
    expect(codes).toEqual([...codes].sort());
    expect(codes).toEqual(expect.arrayContaining(['de', 'es', 'it', 'pt']));
  });
});

describe('what the gateway does with it', () => {
  it('stops sending tunnels through an exit an admin marked unhealthy, and resumes once healthy', async () => {
    await addLocation({ countryCode: 'nl', label: 'Netherlands' });
    for (const n of [1, 2]) {
      await addExit('nl', { exitId: `up${n}`, kind: 'socks5', host: `192.0.2.${n}`, port: 1080 });
    }
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();
    const inNl = request(customer, { username: `${customer.username}-country-nl` });
    const exitsOf = async (count: number) => {
      const seen = new Set<string>();
      for (let i = 0; i < count; i++) {
        const grant = grantOf(await controller.authorize(inNl));
        seen.add(grant.exit.id);
        grant.close();
      }
      return seen;
    };
    expect(await exitsOf(4)).toEqual(new Set(['nl:up1', 'nl:up2']));

    await markExitHealth('nl', 'up2', { healthy: false, error: 'maintenance' }, { clock });
    await waitUntil(async () => (await exitsOf(4)).size === 1);
    expect(await exitsOf(4)).toEqual(new Set(['nl:up1']));

    await markExitHealth('nl', 'up2', { healthy: true }, { clock });
    await waitUntil(async () => (await exitsOf(4)).size === 2);
  });

  it('refuses a location after it is removed', async () => {
    await addLocation({ countryCode: 'be', label: 'Belgium' });
    await addExit('be', { exitId: 'direct', kind: 'direct' });
    const customer = await newCustomer('personal', clock);
    const controller = await controllers.start();
    const inBe = request(customer, { username: `${customer.username}-country-be` });
    grantOf(await controller.authorize(inBe)).close();

    await removeLocation('be');

    await waitUntil(async () => !(await controller.authorize(inBe)).ok);
    expect(await controller.authorize(inBe)).toMatchObject({ ok: false, code: 'UNKNOWN_LOCATION' });
  });
});
