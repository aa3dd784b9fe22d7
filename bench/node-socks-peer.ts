/**
 * The Node reference peer of the gateway benchmark: the smallest SOCKS5 proxy
 * one would write with `node:net`, and nothing of Atlantic's. It does what
 * the C peers do per tunnel (greeting, RFC 1929 login against one fixed
 * credential, CONNECT, relay both ways with `pipe()`), so its figures are
 * what Node itself costs on this machine, next to which Atlantic's access
 * layer (credential cache, entitlements, limits, leases, metering) can be
 * judged.
 *
 *   node bench/node-socks-peer.js <username> <password>
 *
 * Prints `{"port":N,"pid":N}` once listening on 127.0.0.1.
 */
import net from 'node:net';

const [username, password] = process.argv.slice(2);
if (!username || !password) throw new Error('usage: node-socks-peer.js <username> <password>');
const expectedLogin = Buffer.concat([
  Buffer.from([1, username.length]),
  Buffer.from(username),
  Buffer.from([password.length]),
  Buffer.from(password),
]);

/** 0: greeting, 1: login, 2: request, 3: relaying. */
type Stage = 0 | 1 | 2 | 3;

function serve(client: net.Socket): void {
  client.setNoDelay(true);
  let stage: Stage = 0;
  let pending: Buffer = Buffer.alloc(0);
  const fail = (reply?: Buffer): void => {
    if (reply) client.end(reply);
    else client.destroy();
  };
  const onData = (chunk: Buffer): void => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      if (stage === 0) {
        if (pending.length < 2) return;
        const methods = pending[1] as number;
        if (pending.length < 2 + methods) return;
        if (pending[0] !== 5 || !pending.subarray(2, 2 + methods).includes(2)) {
          fail(Buffer.from([5, 0xff]));
          return;
        }
        pending = pending.subarray(2 + methods);
        stage = 1;
        client.write(Buffer.from([5, 2]));
      } else if (stage === 1) {
        if (pending.length < 2) return;
        const userLength = pending[1] as number;
        if (pending.length < 3 + userLength) return;
        const passwordLength = pending[2 + userLength] as number;
        const end = 3 + userLength + passwordLength;
        if (pending.length < end) return;
        const ok = pending.subarray(0, end).equals(expectedLogin);
        pending = pending.subarray(end);
        if (!ok) {
          fail(Buffer.from([1, 1]));
          return;
        }
        stage = 2;
        client.write(Buffer.from([1, 0]));
      } else if (stage === 2) {
        if (pending.length < 5) return;
        const type = pending[3];
        const addressLength =
          type === 1 ? 4 : type === 4 ? 16 : type === 3 ? 1 + (pending[4] as number) : -1;
        if (pending[0] !== 5 || pending[1] !== 1 || addressLength < 0) {
          fail(Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]));
          return;
        }
        const end = 4 + addressLength + 2;
        if (pending.length < end) return;
        const host =
          type === 1
            ? pending.subarray(4, 8).join('.')
            : type === 3
              ? pending.subarray(5, 5 + (pending[4] as number)).toString()
              : (pending.subarray(4, 20).toString('hex').match(/.{4}/g) ?? []).join(':');
        const port = pending.readUInt16BE(end - 2);
        const early = pending.subarray(end);
        stage = 3;
        client.setTimeout(0);
        client.off('data', onData);
        client.pause();
        const target = net.connect({ host, port, noDelay: true });
        target.once('connect', () => {
          client.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
          if (early.length) target.write(early);
          client.pipe(target);
          target.pipe(client);
          client.resume();
        });
        target.on('error', () => {
          if (!client.destroyed) fail(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
        });
        client.on('error', () => target.destroy());
        client.on('close', () => target.destroy());
        target.on('close', () => client.end());
        return;
      } else {
        return;
      }
    }
  };
  client.on('data', onData);
  client.on('error', () => client.destroy());
  client.setTimeout(30_000, () => client.destroy());
}

const server = net.createServer(serve);
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`${JSON.stringify({ port: address.port, pid: process.pid })}\n`);
});
process.once('SIGTERM', () => process.exit(0));
