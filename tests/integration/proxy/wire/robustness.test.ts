/**
 * Hostile input: garbage, truncated and oversized handshakes get clean
 * answers, and a fuzz run of more than 100,000 random and mutated handshakes
 * (most through the parser directly, thousands over real sockets to both
 * listeners) leaves the gateway healthy, relays nothing without
 * authentication and leaks no socket.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect } from 'node:net';
import { parseAuthority, parseProxyAuthorization } from '../../../../proxy/http-proxy.js';
import { Socks5Parser } from '../../../../proxy/socks5.js';
import {
  FakeAccess,
  RawClient,
  authMessage,
  connectRequest,
  startEchoServer,
  startGateway,
  type StartedGateway,
  type TcpTarget,
} from '../../../support/proxy-wire.js';

const access = new FakeAccess().addUser('alice', { password: 's3cret' });
let gw: StartedGateway;
let target: TcpTarget;

beforeAll(async () => {
  gw = await startGateway(access, { timeouts: { handshakeMs: 2_000 } });
  target = await startEchoServer();
});

afterAll(async () => {
  await gw.stop();
  await target.close();
});

/** A small deterministic PRNG (mulberry32), so a failing case can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(next: () => number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = Math.floor(next() * 256);
  return bytes;
}

/** A valid-looking SOCKS handshake for a user that does not exist, then mutated. */
let validSocks: Buffer | undefined;
let validHttp: Buffer | undefined;

function mutatedSocks(next: () => number): Buffer {
  const valid = (validSocks ??= Buffer.concat([
    Buffer.from([5, 2, 0, 2]),
    authMessage('mallory', 'guess'),
    connectRequest('127.0.0.1', target.port),
    Buffer.from('payload'),
  ]));
  return mutate(next, valid);
}

function mutatedHttp(next: () => number): Buffer {
  const valid = (validHttp ??= Buffer.from(
    `CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Proxy-Authorization: Basic ${Buffer.from('mallory:guess').toString('base64')}\r\n\r\npayload`,
  ));
  return mutate(next, valid);
}

function mutate(next: () => number, valid: Buffer): Buffer {
  const roll = next();
  if (roll < 0.2) return randomBytes(next, Math.floor(next() * 600));
  if (roll < 0.35) return valid.subarray(0, Math.floor(next() * valid.length)); // truncated
  const copy = Buffer.from(valid);
  const flips = 1 + Math.floor(next() * 4);
  for (let i = 0; i < flips; i++) copy[Math.floor(next() * copy.length)] = Math.floor(next() * 256);
  if (roll > 0.9) return Buffer.concat([copy, randomBytes(next, Math.floor(next() * 2000))]);
  return copy;
}

/** Sends `bytes`, half-closes, and waits until the gateway closes the connection. */
function throwAt(port: number, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.on('close', () => resolve());
    socket.end(bytes);
  });
}

async function inParallel(
  count: number,
  concurrency: number,
  run: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        await run(i);
      }
    }),
  );
}

describe('garbage, truncated and oversized handshakes', () => {
  it('closes on a non-SOCKS first byte without answering', async () => {
    const client = await RawClient.connect(gw.socksPort);
    client.write('GET / HTTP/1.1\r\n\r\n');
    expect((await client.ended).length).toBe(0);
  });

  it('closes a truncated handshake when the client stops sending', async () => {
    const client = await RawClient.connect(gw.socksPort);
    client.write([5, 1, 2, 1, 5, 0x61]);
    client.socket.end();
    expect([...(await client.ended)]).toEqual([5, 2]);
  });

  it('answers an oversized handshake with a general failure', async () => {
    const client = await RawClient.connect(gw.socksPort);
    client.write(Buffer.concat([Buffer.from([5, 1, 2, 1, 255]), Buffer.alloc(200 * 1024, 0x61)]));
    const answer = await client.ended;
    expect([...answer.subarray(0, 2)]).toEqual([5, 2]);
  });

  it('closes a silent SOCKS client after the handshake timeout', async () => {
    const slow = await startGateway(access, { timeouts: { handshakeMs: 50 } });
    const client = await RawClient.connect(slow.socksPort);
    expect((await client.ended).length).toBe(0);
    await slow.stop();
  });
});

describe('idle tunnels', () => {
  // Its own access double: the fuzz run below checks that no grant was ever made.
  const idleAccess = new FakeAccess().addUser('alice', { password: 's3cret' });

  async function openTunnel(port: number): Promise<RawClient> {
    const client = await RawClient.connect(port);
    client.write(
      Buffer.concat([
        Buffer.from([5, 1, 2]),
        authMessage('alice', 's3cret'),
        connectRequest('127.0.0.1', target.port),
      ]),
    );
    expect([...(await client.take(2 + 2 + 10)).subarray(0, 5)]).toEqual([5, 2, 1, 0, 5]);
    return client;
  }

  it('closes a tunnel with no byte either way after the idle timeout, and keeps a busy one open', async () => {
    const idle = await startGateway(idleAccess, { timeouts: { idleMs: 100 } });
    const quiet = await openTunnel(idle.socksPort);
    const busy = await openTunnel(idle.socksPort);
    let quietClosed = false;
    const quietEnded = quiet.ended.then(() => (quietClosed = true));
    // The busy tunnel echoes byte after byte until the quiet one is closed:
    // it is never quiet for 100 ms, so the sweep must leave it alone.
    let exchanges = 0;
    while (!quietClosed) {
      busy.write('x');
      expect((await busy.take(1)).toString()).toBe('x');
      exchanges += 1;
    }
    await quietEnded;
    expect(exchanges).toBeGreaterThan(0);
    expect(busy.socket.destroyed).toBe(false);
    expect(idle.gateway.activeTunnels()).toBe(1);
    busy.socket.destroy();
    await idle.stop();
  });
});

describe('fuzz', () => {
  it('parses 100,000 random and mutated SOCKS handshakes without throwing or accepting the impossible', () => {
    const next = random(1928);
    let requests = 0;
    const violations: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const bytes = mutatedSocks(next);
      const parser = new Socks5Parser();
      // Feed in random fragments; take every message the parser yields.
      let offset = 0;
      const seen: string[] = [];
      while (offset < bytes.length && seen.at(-1) !== 'invalid') {
        const size = 1 + Math.floor(next() * 64);
        parser.push(bytes.subarray(offset, offset + size));
        offset += size;
        for (let message = parser.take(); message; message = parser.take()) {
          seen.push(message.type);
          if (message.type === 'request') {
            requests += 1;
            if (!(message.port > 0 && message.host.length > 0))
              violations.push(`case ${i}: empty target`);
          }
        }
      }
      // A request is only ever parsed after a greeting and an auth message.
      const request = seen.indexOf('request');
      if (request >= 0 && seen.slice(0, request).join() !== 'greeting,auth') {
        violations.push(`case ${i}: ${seen.join()}`);
      }
    }
    expect(violations).toEqual([]);
    expect(requests).toBeGreaterThan(0);
  });

  it('parses 100,000 random and mutated proxy heads without throwing', () => {
    const next = random(7235);
    let bad = 0;
    for (let i = 0; i < 100_000; i++) {
      const text = mutatedHttp(next).toString('latin1');
      const [line = '', ...headers] = text.split('\r\n');
      const authority = parseAuthority(line.split(' ')[1] ?? '');
      if (authority && !(authority.port > 0 && authority.port < 65536)) bad += 1;
      const auth = headers.find((h) => h.toLowerCase().startsWith('proxy-authorization:'));
      parseProxyAuthorization(auth?.slice(20));
    }
    expect(bad).toBe(0);
  });

  it('survives thousands of hostile connections to both listeners: healthy, nothing relayed, no leaks', async () => {
    const next = random(1929);
    const before = target.accepted;
    await inParallel(3_000, 64, async (i) => {
      if (i % 2 === 0) await throwAt(gw.socksPort, mutatedSocks(next));
      else await throwAt(gw.httpPort, mutatedHttp(next));
    });
    await gw.gateway.whenNoConnections();
    expect(await gw.gateway.serverConnections()).toEqual({ socks: 0, http: 0 });
    expect(gw.gateway.activeTunnels()).toBe(0);
    // Nothing reached the target without valid credentials.
    expect(target.accepted).toBe(before);
    expect(access.grants).toHaveLength(0);
    // Still serving real customers.
    const client = await RawClient.connect(gw.socksPort);
    client.write(
      Buffer.concat([
        Buffer.from([5, 1, 2]),
        authMessage('alice', 's3cret'),
        connectRequest('127.0.0.1', target.port),
      ]),
    );
    expect([...(await client.take(14)).subarray(0, 6)]).toEqual([5, 2, 1, 0, 5, 0]);
    client.write('still alive');
    expect((await client.take(11)).toString()).toBe('still alive');
    client.socket.destroy();
  });
});
