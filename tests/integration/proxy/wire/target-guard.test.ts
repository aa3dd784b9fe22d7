import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { isForbiddenAddress, TargetGuard } from '../../../../proxy/target-guard.js';
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
const aliceAuth = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
let guarded: StartedGateway;
let open: StartedGateway;
let echo: TcpTarget;

beforeAll(async () => {
  guarded = await startGateway(access, { allowPrivateTargets: false });
  open = await startGateway(access, { allowPrivateTargets: true, blockedPorts: [25] });
  echo = await startEchoServer();
});

afterAll(async () => {
  await guarded.stop();
  await open.stop();
  await echo.close();
});

/** The SOCKS reply code for CONNECT host:port as alice. */
async function socksReply(
  gw: StartedGateway,
  host: string,
  port: number,
): Promise<number | undefined> {
  const client = await RawClient.connect(gw.socksPort);
  client.write(Buffer.concat([Buffer.from([5, 1, 2]), authMessage('alice', 's3cret')]));
  await client.take(4);
  if (host.includes(':')) {
    const bytes = Buffer.alloc(22);
    bytes.set([5, 1, 0, 4]);
    const words =
      host === '::ffff:127.0.0.1' ? [0, 0, 0, 0, 0, 0xffff, 0x7f00, 1] : [0, 0, 0, 0, 0, 0, 0, 1];
    words.forEach((word, i) => bytes.writeUInt16BE(word, 4 + i * 2));
    bytes.writeUInt16BE(port, 20);
    client.write(bytes);
  } else {
    client.write(connectRequest(host, port));
  }
  const reply = await client.read(2);
  client.socket.destroy();
  return reply[1];
}

async function connectStatus(gw: StartedGateway, authority: string): Promise<string> {
  const client = await RawClient.connect(gw.httpPort);
  client.write(`CONNECT ${authority} HTTP/1.1\r\nProxy-Authorization: ${aliceAuth}\r\n\r\n`);
  return (await client.ended).toString();
}

describe('target guard on the wire', () => {
  it.each([
    ['127.0.0.1'],
    ['10.1.2.3'],
    ['::ffff:127.0.0.1'],
    ['::1'],
    ['localhost'],
    ['169.254.169.254'],
  ])('refuses %s over SOCKS5 with 0x02 when private targets are off', async (host) => {
    const before = echo.accepted;
    expect(await socksReply(guarded, host, echo.port)).toBe(0x02);
    expect(echo.accepted).toBe(before);
  });

  it('refuses a name that resolves to loopback over CONNECT with 403 and the reason', async () => {
    const answer = await connectStatus(guarded, `localhost:${echo.port}`);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain('TARGET_FORBIDDEN');
  });

  it('refuses a blocked port (25) even where private targets are allowed', async () => {
    expect(await socksReply(open, '127.0.0.1', 25)).toBe(0x02);
    const answer = await connectStatus(open, '127.0.0.1:25');
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain('PORT_BLOCKED');
  });

  it('lets the same targets through when private targets are allowed', async () => {
    expect(await socksReply(open, '127.0.0.1', echo.port)).toBe(0x00);
    expect(await socksReply(open, 'localhost', echo.port)).toBe(0x00);
  });

  it('closes the grant of a refused target without billing it', async () => {
    const grant = access.nextGrant();
    await socksReply(guarded, '10.0.0.1', 80);
    const granted = await grant;
    await granted.closed;
    expect(granted.allowedBytes).toBe(0);
    expect(granted.closeCalls).toBe(1);
    expect(granted.exitFailures).toEqual([]);
  });
});

describe('forbidden address table', () => {
  it.each([
    '0.1.2.3',
    '10.0.0.1',
    '100.64.0.1',
    '127.0.0.1',
    '169.254.169.254',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    'fe80::1',
    'fc00::1',
    'fd00:ec2::254',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::7f00:1',
    '2002:7f00:1::',
  ])('refuses %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
  ])('allows %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(false);
  });

  it('keeps only the public addresses of a name that resolves to both kinds', async () => {
    const guard = new TargetGuard({
      allowPrivateTargets: false,
      resolve: () =>
        Promise.resolve([
          { address: '127.0.0.1', family: 4 },
          { address: '93.184.216.34', family: 4 },
        ]),
    });
    expect(await guard.check('rebind.example', 443)).toEqual({
      ok: true,
      addresses: [{ address: '93.184.216.34', family: 4 }],
    });
  });
});
