/**
 * Upstream exits: the gateway dials through a real third-party SOCKS5 proxy
 * (microsocks, danted) or an HTTP CONNECT proxy (a second gateway) and the
 * customer's bytes arrive intact and metered. microsocks and danted come from
 * Debian (.ci/run installs them); without them those cases say so and skip.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { SocksClient } from 'socks';
import type { ExitRoute } from '../../../../proxy/access.js';
import {
  FakeAccess,
  hasCommand,
  startDanted,
  startEchoServer,
  startGateway,
  startMicrosocks,
  type Daemon,
  type StartedGateway,
  type TcpTarget,
} from '../../../support/proxy-wire.js';

const haveMicrosocks = hasCommand('microsocks');
const haveDanted = hasCommand('danted');
const access = new FakeAccess();
let gw: StartedGateway;
let upstreamGateway: StartedGateway;
let echo: TcpTarget;
let microsocks: Daemon | undefined;
let danted: Daemon | undefined;

beforeAll(async () => {
  echo = await startEchoServer();
  gw = await startGateway(access);
  const upstreamAccess = new FakeAccess().addUser('exit-user', { password: 'exit-pw' });
  upstreamGateway = await startGateway(upstreamAccess);
  if (haveMicrosocks) microsocks = await startMicrosocks({ username: 'up', password: 'up-pw' });
  if (haveDanted) danted = await startDanted();
});

afterAll(async () => {
  await gw.stop();
  await upstreamGateway.stop();
  await echo.close();
  await microsocks?.stop();
  await danted?.stop();
});

async function echoThrough(
  exit: ExitRoute,
  message: string,
): Promise<{ answer: string; metered: number }> {
  const username = `via-${exit.id}`;
  access.addUser(username, { password: 'pw', exit });
  const grant = access.nextGrant();
  const { socket } = await SocksClient.createConnection({
    command: 'connect',
    destination: { host: '127.0.0.1', port: echo.port },
    proxy: { host: '127.0.0.1', port: gw.socksPort, type: 5, userId: username, password: 'pw' },
  });
  const answer = await roundTrip(socket, message);
  const granted = await grant;
  await granted.closed;
  return { answer, metered: granted.allowedBytes };
}

/**
 * Writes, waits for the echo, then closes: microsocks does not pass a
 * half-close on (one FIN ends both directions), so ending first would race it.
 */
async function roundTrip(socket: Socket, message: string): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  const echoed = new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= message.length) resolve();
    }),
  );
  socket.write(message);
  await echoed;
  socket.end();
  await once(socket, 'close');
  return Buffer.concat(chunks).toString();
}

describe('upstream exits', () => {
  it('chains through microsocks with username auth', async () => {
    if (!microsocks) {
      process.stderr.write('skipped: microsocks is not installed (apt-get install microsocks)\n');
      return;
    }
    const exit: ExitRoute = {
      kind: 'socks5',
      id: 'microsocks',
      host: '127.0.0.1',
      port: microsocks.port,
      username: 'up',
      password: 'up-pw',
    };
    expect(await echoThrough(exit, 'through microsocks')).toEqual({
      answer: 'through microsocks',
      metered: 2 * 'through microsocks'.length,
    });
  });

  it('chains through danted', async () => {
    if (!danted) {
      process.stderr.write('skipped: danted is not installed (apt-get install dante-server)\n');
      return;
    }
    const exit: ExitRoute = { kind: 'socks5', id: 'danted', host: '127.0.0.1', port: danted.port };
    expect(await echoThrough(exit, 'through dante')).toEqual({
      answer: 'through dante',
      metered: 2 * 'through dante'.length,
    });
  });

  it('chains through an HTTP CONNECT upstream with credentials', async () => {
    const exit: ExitRoute = {
      kind: 'http',
      id: 'http-up',
      host: '127.0.0.1',
      port: upstreamGateway.httpPort,
      username: 'exit-user',
      password: 'exit-pw',
    };
    expect(await echoThrough(exit, 'through http upstream')).toEqual({
      answer: 'through http upstream',
      metered: 2 * 'through http upstream'.length,
    });
  });

  it('marks the exit failed and answers 0x01 when the upstream refuses our credentials', async () => {
    if (!microsocks) return;
    access.addUser('bad-exit', {
      password: 'pw',
      exit: {
        kind: 'socks5',
        id: 'bad',
        host: '127.0.0.1',
        port: microsocks.port,
        username: 'up',
        password: 'wrong',
      },
    });
    const grant = access.nextGrant();
    await expect(
      SocksClient.createConnection({
        command: 'connect',
        destination: { host: '127.0.0.1', port: echo.port },
        proxy: {
          host: '127.0.0.1',
          port: gw.socksPort,
          type: 5,
          userId: 'bad-exit',
          password: 'pw',
        },
      }),
    ).rejects.toThrow(/Failure/);
    const granted = await grant;
    await granted.closed;
    expect(granted.exitFailures).toHaveLength(1);
  });

  it('answers 0x01 and marks the exit failed when the upstream is down', async () => {
    access.addUser('dead-exit', {
      password: 'pw',
      exit: { kind: 'http', id: 'dead', host: '127.0.0.1', port: 1 },
    });
    const grant = access.nextGrant();
    await expect(
      SocksClient.createConnection({
        command: 'connect',
        destination: { host: '127.0.0.1', port: echo.port },
        proxy: {
          host: '127.0.0.1',
          port: gw.socksPort,
          type: 5,
          userId: 'dead-exit',
          password: 'pw',
        },
      }),
    ).rejects.toThrow(/Failure/);
    expect((await grant).exitFailures).toHaveLength(1);
  });
});
