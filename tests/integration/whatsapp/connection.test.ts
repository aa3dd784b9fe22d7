/**
 * What the WhatsApp connection does when Baileys closes it
 * (bot/whatsapp/connection.ts decideAfterClose), table by table over
 * Baileys' real DisconnectReason codes: reconnect with a growing backoff,
 * pair again, or stop, and whether the login is thrown away.
 */
import { describe, expect, it } from '@jest/globals';
import { DisconnectReason } from '@whiskeysockets/baileys';
import {
  backoffDelayMs,
  decideAfterClose,
  DEFAULT_BACKOFF,
  DISCONNECT,
  statusCodeOf,
  type CloseDecision,
} from '../../../bot/whatsapp/connection.js';
import { boom } from './fake-socket.js';

const first = { attempt: 1, badSessions: 0 };

describe('the disconnect codes', () => {
  it('are the ones Baileys 7.0.0-rc14 uses', () => {
    const real = Object.fromEntries(
      Object.entries(DisconnectReason).filter(([name]) => Number.isNaN(Number(name))),
    );
    expect(DISCONNECT).toEqual(real);
  });

  it('are read from the Boom on lastDisconnect.error', () => {
    expect(statusCodeOf(boom(DisconnectReason.loggedOut))).toBe(401);
    expect(statusCodeOf(new Error('plain'))).toBeUndefined();
    expect(statusCodeOf(undefined)).toBeUndefined();
  });
});

describe('after a close', () => {
  const table: [string, number | undefined, CloseDecision['action'], Partial<CloseDecision>][] = [
    ['loggedOut', DisconnectReason.loggedOut, 'stop', { clearAuth: true }],
    ['connectionReplaced', DisconnectReason.connectionReplaced, 'stop', { clearAuth: false }],
    ['forbidden', DisconnectReason.forbidden, 'stop', { clearAuth: false }],
    ['multideviceMismatch', DisconnectReason.multideviceMismatch, 'stop', { clearAuth: false }],
    ['restartRequired', DisconnectReason.restartRequired, 'reconnect', { delayMs: 0 }],
    ['connectionClosed', DisconnectReason.connectionClosed, 'reconnect', { delayMs: 1_000 }],
    ['connectionLost', DisconnectReason.connectionLost, 'reconnect', { delayMs: 1_000 }],
    ['timedOut', DisconnectReason.timedOut, 'reconnect', { delayMs: 1_000 }],
    ['unavailableService', DisconnectReason.unavailableService, 'reconnect', { delayMs: 1_000 }],
    ['badSession (first)', DisconnectReason.badSession, 'reconnect', { delayMs: 1_000 }],
    ['an unknown code', 499, 'reconnect', { delayMs: 1_000 }],
    ['no error at all', undefined, 'reconnect', { delayMs: 1_000 }],
  ];

  it.each(table)('%s (%s): %s', (_name, code, action, details) => {
    const decision = decideAfterClose(code, {
      attempt: 1,
      badSessions: code === DisconnectReason.badSession ? 1 : 0,
    });
    expect(decision).toMatchObject({ action, ...details });
  });

  it('backs off 1 s, 2 s, 4 s ... up to a minute while the connection keeps failing', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 20].map(
      (attempt) =>
        decideAfterClose(DisconnectReason.connectionLost, { attempt, badSessions: 0 }) as {
          delayMs: number;
        },
    );
    expect(delays.map((d) => d.delayMs)).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
    ]);
    expect(backoffDelayMs(1, { ...DEFAULT_BACKOFF, baseMs: 10, maxMs: 35 })).toBe(10);
    expect(backoffDelayMs(3, { ...DEFAULT_BACKOFF, baseMs: 10, maxMs: 35 })).toBe(35);
  });

  it('pairs again only after badSession three times in a row (Baileys also reports unknown errors as 500)', () => {
    const code = DisconnectReason.badSession;
    expect(decideAfterClose(code, { attempt: 1, badSessions: 1 }).action).toBe('reconnect');
    expect(decideAfterClose(code, { attempt: 2, badSessions: 2 }).action).toBe('reconnect');
    expect(decideAfterClose(code, { attempt: 3, badSessions: 3 })).toMatchObject({
      action: 'repair',
    });
    expect(
      decideAfterClose(
        code,
        { attempt: 1, badSessions: 1 },
        { ...DEFAULT_BACKOFF, badSessionsBeforeReset: 1 },
      ).action,
    ).toBe('repair');
  });

  it('never reconnects after a logout, whatever the history', () => {
    for (const attempt of [1, 5, 50]) {
      expect(decideAfterClose(DisconnectReason.loggedOut, { ...first, attempt })).toMatchObject({
        action: 'stop',
        clearAuth: true,
      });
    }
  });
});
