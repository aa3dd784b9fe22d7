import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { SocksClient } from 'socks';
import {
  FakeAccess,
  RawClient,
  authMessage,
  connectRequest,
  curl,
  hasCommand,
  startEchoServer,
  startGateway,
  startHttpTarget,
  type HttpTarget,
  type StartedGateway,
  type TcpTarget,
} from '../../../support/proxy-wire.js';

const access = new FakeAccess().addUser('alice', { password: 's3cret' }).addUser('starter', {
  password: 'pw',
  refusal: {
    ok: false,
    kind: 'entitlement',
    code: 'PROTOCOL_NOT_ALLOWED',
    message: 'Upgrade to PAYG for all protocols',
  },
});
let gw: StartedGateway;
let echo: TcpTarget;
let echo6: TcpTarget | undefined;
let web: HttpTarget;

beforeAll(async () => {
  gw = await startGateway(access);
  echo = await startEchoServer();
  echo6 = await startEchoServer('::1').catch(() => undefined);
  web = await startHttpTarget();
});

afterAll(async () => {
  await gw.stop();
  await echo.close();
  await echo6?.close();
  await web.close();
});

async function socksEcho(host: string, port: number, message: string): Promise<string> {
  const { socket } = await SocksClient.createConnection({
    command: 'connect',
    destination: { host, port },
    proxy: { host: '127.0.0.1', port: gw.socksPort, type: 5, userId: 'alice', password: 's3cret' },
  });
  socket.end(message);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'close');
  return Buffer.concat(chunks).toString();
}

/** Greets and authenticates as alice; returns the client ready for its request. */
async function authenticated(): Promise<RawClient> {
  const client = await RawClient.connect(gw.socksPort);
  client.write([5, 1, 2]);
  expect([...(await client.take(2))]).toEqual([5, 2]);
  client.write(authMessage('alice', 's3cret'));
  expect([...(await client.take(2))]).toEqual([1, 0]);
  return client;
}

describe('SOCKS5 CONNECT', () => {
  it('relays to an IPv4 target with username/password auth and meters every byte', async () => {
    const grant = access.nextGrant();
    expect(await socksEcho('127.0.0.1', echo.port, 'ping over ipv4')).toBe('ping over ipv4');
    const granted = await grant;
    await granted.closed;
    expect(granted.request).toMatchObject({
      protocol: 'socks5',
      host: '127.0.0.1',
      port: echo.port,
    });
    expect(granted.allowedBytes).toBe(2 * 'ping over ipv4'.length);
    expect(granted.closeCalls).toBe(1);
  });

  it('relays to an IPv6 target', async () => {
    if (!echo6) {
      process.stderr.write('skipped: no IPv6 loopback on this machine\n');
      return;
    }
    expect(await socksEcho('::1', echo6.port, 'ping over ipv6')).toBe('ping over ipv6');
  });

  it('resolves a domain name target', async () => {
    const grant = access.nextGrant();
    expect(await socksEcho('localhost', echo.port, 'ping by name')).toBe('ping by name');
    expect((await grant).request.host).toBe('localhost');
  });

  it('answers BND.ADDR and BND.PORT of the outbound socket', async () => {
    const client = await authenticated();
    const accepted = once(echo.server, 'connection') as Promise<[Socket]>;
    client.write(connectRequest('127.0.0.1', echo.port));
    const reply = await client.take(10);
    const [targetSide] = await accepted;
    expect([...reply.subarray(0, 4)]).toEqual([5, 0, 0, 1]);
    expect([...reply.subarray(4, 8)].join('.')).toBe('127.0.0.1');
    expect(reply.readUInt16BE(8)).toBe(targetSide.remotePort);
    client.socket.destroy();
  });

  it('copes with a handshake sent one byte at a time', async () => {
    const client = await RawClient.connect(gw.socksPort);
    const bytes = [
      5,
      1,
      2,
      ...authMessage('alice', 's3cret'),
      ...connectRequest('127.0.0.1', echo.port),
    ];
    // Each byte waits for the previous one to leave, so the gateway sees fragments.
    for (const byte of bytes.slice(0, 3)) {
      await new Promise<void>((resolve) =>
        client.socket.write(Buffer.from([byte]), () => resolve()),
      );
    }
    expect([...(await client.take(2))]).toEqual([5, 2]);
    for (const byte of bytes.slice(3)) {
      await new Promise<void>((resolve) =>
        client.socket.write(Buffer.from([byte]), () => resolve()),
      );
    }
    expect([...(await client.take(2))]).toEqual([1, 0]);
    expect((await client.take(10))[1]).toBe(0);
    client.write('fragmented');
    expect((await client.take(10)).toString()).toBe('fragmented');
    client.socket.destroy();
  });

  it('serves a client that pipelines greeting, auth, request and payload in one write', async () => {
    const client = await RawClient.connect(gw.socksPort);
    client.write(
      Buffer.concat([
        Buffer.from([5, 1, 2]),
        authMessage('alice', 's3cret'),
        connectRequest('127.0.0.1', echo.port),
        Buffer.from('early payload'),
      ]),
    );
    const answer = await client.read(2 + 2 + 10 + 'early payload'.length);
    expect([...answer.subarray(0, 5)]).toEqual([5, 2, 1, 0, 5]);
    expect(answer[5]).toBe(0);
    expect(answer.subarray(14).toString()).toBe('early payload');
    client.socket.destroy();
  });

  it('works with curl --socks5-hostname against an HTTP target', async () => {
    if (!hasCommand('curl')) return;
    const result = await curl([
      '--socks5-hostname',
      `127.0.0.1:${gw.socksPort}`,
      '--proxy-user',
      'alice:s3cret',
      `http://localhost:${web.port}/via-socks`,
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('hello from target: GET /via-socks 0');
  });
});

describe('SOCKS5 refusals', () => {
  it('never offers anonymous access: a client offering only "no auth" gets 0xFF and a close', async () => {
    const client = await RawClient.connect(gw.socksPort);
    client.write([5, 1, 0]);
    expect([...(await client.ended)]).toEqual([5, 0xff]);
  });

  it('answers a wrong password with RFC 1929 status 1 and closes', async () => {
    const client = await RawClient.connect(gw.socksPort);
    client.write([5, 2, 0, 2]);
    expect([...(await client.take(2))]).toEqual([5, 2]);
    client.write(authMessage('alice', 'wrong'));
    expect([...(await client.ended)]).toEqual([1, 1]);
  });

  it('answers an entitlement refusal with 0x02 (not allowed by ruleset)', async () => {
    const client = await RawClient.connect(gw.socksPort);
    client.write(Buffer.concat([Buffer.from([5, 1, 2]), authMessage('starter', 'pw')]));
    expect([...(await client.take(4))]).toEqual([5, 2, 1, 0]);
    client.write(connectRequest('127.0.0.1', echo.port));
    const reply = await client.ended;
    expect(reply[1]).toBe(0x02);
  });

  it('answers BIND with 0x07 and an unknown address type with 0x08', async () => {
    const bind = await authenticated();
    bind.write([5, 2, 0, 1, 127, 0, 0, 1, 0, 80]);
    expect((await bind.ended)[1]).toBe(0x07);
    const badType = await authenticated();
    badType.write([5, 1, 0, 9, 1, 2, 3, 4, 0, 80]);
    expect((await badType.ended)[1]).toBe(0x08);
  });

  it('answers a closed port with 0x05 (connection refused)', async () => {
    const closed = await startEchoServer();
    await closed.close();
    const client = await authenticated();
    client.write(connectRequest('127.0.0.1', closed.port));
    expect((await client.ended)[1]).toBe(0x05);
  });

  it('answers a name that does not resolve with 0x04 (host unreachable)', async () => {
    const client = await authenticated();
    client.write(connectRequest('no-such-host.invalid', 80));
    expect((await client.ended)[1]).toBe(0x04);
  });
});
