import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { SocksClient } from 'socks';
import {
  FakeAccess,
  followsPattern,
  startGateway,
  startSourceServer,
  type StartedGateway,
} from '../../../support/proxy-wire.js';

const MiB = 1024 * 1024;
const access = new FakeAccess().addUser('alice', { password: 's3cret' });
let gw: StartedGateway;

beforeAll(async () => {
  gw = await startGateway(access);
});

afterAll(async () => {
  await gw.stop();
});

async function socksTunnel(port: number, username = 'alice', password = 's3cret'): Promise<Socket> {
  const { socket } = await SocksClient.createConnection({
    command: 'connect',
    destination: { host: '127.0.0.1', port },
    proxy: { host: '127.0.0.1', port: gw.socksPort, type: 5, userId: username, password },
  });
  return socket;
}

function collect(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('metering', () => {
  it('meters exactly the bytes relayed: 5 MiB each way, both intact', async () => {
    const upload = randomBytes(5 * MiB);
    const download = randomBytes(5 * MiB);
    // The target keeps what it receives and sends its own 5 MiB at once.
    let resolveTarget: (data: Buffer) => void = () => undefined;
    const targetReceived = new Promise<Buffer>((resolve) => (resolveTarget = resolve));
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('end', () => resolveTarget(Buffer.concat(chunks)));
      socket.end(download);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const grant = access.nextGrant();
    const socket = await socksTunnel((server.address() as AddressInfo).port);
    const received = collect(socket);
    socket.end(upload);
    const [clientGot, targetBytes] = await Promise.all([received, targetReceived]);
    const granted = await grant;
    await granted.closed;
    server.close();
    expect(sha256(clientGot)).toBe(sha256(download));
    expect(sha256(targetBytes)).toBe(sha256(upload));
    expect(targetBytes.length + clientGot.length).toBe(10 * MiB);
    expect(granted.allowedBytes).toBe(clientGot.length + targetBytes.length);
    expect(granted.closeCalls).toBe(1);
  });

  it('cuts a download at the quota: the client gets exactly the budget, then the socket closes', async () => {
    const budget = 3 * MiB + 12_345;
    access.addUser('metered', { password: 'pw', budgetBytes: budget });
    const source = await startSourceServer(16 * MiB);
    const grant = access.nextGrant();
    const socket = await socksTunnel(source.port, 'metered', 'pw');
    const data = await collect(socket);
    const granted = await grant;
    await granted.closed;
    await source.close();
    expect(data.length).toBe(budget);
    expect(followsPattern(data)).toBe(true);
    expect(granted.allowedBytes).toBe(budget);
    expect(granted.closeCalls).toBe(1);
  });

  it('closes a live tunnel at once when the grant is cut', async () => {
    const source = await startSourceServer(0);
    const grant = access.nextGrant();
    const socket = await socksTunnel(source.port);
    const closed = once(socket, 'close');
    const granted = await grant;
    granted.cut('DISCONNECTED');
    await closed;
    await granted.closed;
    expect(granted.closeCalls).toBe(1);
    expect(gw.gateway.activeTunnels()).toBe(0);
    await source.close();
  });

  it('gives every download its own bytes when tunnels end and start around each other', async () => {
    // A bulk tunnel reads into a buffer of its own, which goes to the next
    // bulk tunnel once it ends. Here two readers hold still while two others
    // download in full, so the still ones have writes waiting on that buffer
    // while other tunnels read: each download must still get exactly its bytes.
    const size = 8 * MiB;
    const sent: Buffer[] = [];
    const server = createServer((socket) => {
      const body = randomBytes(size);
      sent.push(body);
      socket.end(body);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const download = async (startReading: Promise<unknown>): Promise<void> => {
      const grant = access.nextGrant();
      const socket = await socksTunnel(port);
      const received = collect(socket);
      // The socks client hands on what came with its reply and resumes the
      // socket on the next turn; hold still only after that.
      await new Promise((resolve) => setImmediate(resolve));
      socket.pause();
      await startReading;
      socket.resume();
      const got = await received;
      await (
        await grant
      ).closed;
      expect(got.length).toBe(size);
      expect(sent.filter((body) => body.equals(got))).toHaveLength(1);
    };
    for (let round = 0; round < 3; round += 1) {
      const fast = Promise.all([download(Promise.resolve()), download(Promise.resolve())]);
      await Promise.all([fast, download(fast), download(fast)]);
    }
    server.close();
    expect(sent).toHaveLength(12);
  });

  it('relays a slow reader without losing bytes (backpressure)', async () => {
    const source = await startSourceServer(8 * MiB);
    const grant = access.nextGrant();
    const socket = await socksTunnel(source.port);
    // Read in bursts: pause after every chunk and resume on the next turn.
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      socket.pause();
      setImmediate(() => socket.resume());
    });
    await once(socket, 'close');
    const data = Buffer.concat(chunks);
    const granted = await grant;
    await granted.closed;
    await source.close();
    expect(data.length).toBe(8 * MiB);
    expect(followsPattern(data)).toBe(true);
    expect(granted.allowedBytes).toBe(8 * MiB);
  });
});
