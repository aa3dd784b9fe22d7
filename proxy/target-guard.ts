/**
 * The target guard: a tunnel may not reach this host's own network.
 *
 *   host, port -> port blocked?                    -> refuse (PORT_BLOCKED)
 *              -> IP literal, or dns.lookup(all)   -> drop forbidden addresses
 *              -> none left                        -> refuse (TARGET_FORBIDDEN)
 *              -> the checked addresses, in order  -> dial connects to exactly these
 *
 * Dialling the address that was checked (never the name again) closes the DNS
 * rebinding window: a name cannot resolve to a public address for the check
 * and to 127.0.0.1 for the connect.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

export interface TargetGuardOptions {
  /** Let tunnels reach loopback, private, link-local and metadata addresses (tests do). */
  allowPrivateTargets: boolean;
  /** Destination ports refused for every plan. Default [25] (SMTP: spam). */
  blockedPorts?: readonly number[];
  /** Name resolution; defaults to dns.lookup with every address. Tests may pass their own. */
  resolve?: (host: string) => Promise<readonly ResolvedAddress[]>;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export type TargetRefusalCode = 'PORT_BLOCKED' | 'TARGET_FORBIDDEN' | 'DNS_FAILED';

export type TargetCheck =
  | { ok: true; addresses: readonly ResolvedAddress[] }
  | { ok: false; code: TargetRefusalCode; message: string; cause?: unknown };

export const DEFAULT_BLOCKED_PORTS: readonly number[] = [25];

/**
 * Ranges no tunnel may reach: RFC 6890 special-purpose registries (IPv4 and
 * IPv6), cloud metadata endpoints and everything that is not unicast.
 */
const forbidden = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // CGNAT, RFC 6598
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, includes 169.254.169.254 (metadata)
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes 255.255.255.255 (broadcast)
] as const) {
  forbidden.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local, includes fd00:ec2::254 (AWS metadata over IPv6)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
] as const) {
  forbidden.addSubnet(network, prefix, 'ipv6');
}

/**
 * The 16 bytes of an IPv6 address (any textual form, dotted tail included),
 * or undefined when it is not one. Also used to encode SOCKS5 BND.ADDR.
 */
export function ipv6ToBytes(text: string): Buffer | undefined {
  const address = text.replace(/%.*$/, ''); // a zone id names an interface, not an address
  if (isIP(address) !== 6) return undefined;
  let head = address;
  const bytes = Buffer.alloc(16);
  let tailWords: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted?.[1] !== undefined) {
    const octets = dotted[1].split('.').map(Number);
    tailWords = [
      ((octets[0] ?? 0) << 8) | (octets[1] ?? 0),
      ((octets[2] ?? 0) << 8) | (octets[3] ?? 0),
    ];
    head = address.slice(0, -dotted[1].length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left = '', right] = head.split('::');
  const parseWords = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((word) => parseInt(word, 16));
  const leftWords = parseWords(left);
  const rightWords = [...(right === undefined ? [] : parseWords(right)), ...tailWords];
  const words =
    right === undefined
      ? [...leftWords, ...tailWords]
      : [
          ...leftWords,
          ...new Array<number>(8 - leftWords.length - rightWords.length).fill(0),
          ...rightWords,
        ];
  words.forEach((word, i) => bytes.writeUInt16BE(word, i * 2));
  return bytes;
}

/** An IPv4 address embedded in an IPv6 one by a translation scheme, if any. */
function embeddedIPv4(bytes: Buffer): string | undefined {
  const zeroPrefix = (end: number): boolean => bytes.subarray(0, end).every((b) => b === 0);
  const tail = (): string => `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (the deprecated "compatible" form).
  if (zeroPrefix(10) && bytes[10] === 0xff && bytes[11] === 0xff) return tail();
  if (zeroPrefix(12)) return tail();
  // 64:ff9b::a.b.c.d, the NAT64 well-known prefix (RFC 6052).
  if (bytes.readUInt32BE(0) === 0x0064ff9b && bytes.subarray(4, 12).every((b) => b === 0)) {
    return tail();
  }
  // 2002:AABB:CCDD::/48, 6to4 (RFC 3056).
  if (bytes.readUInt16BE(0) === 0x2002) {
    return `${bytes[2]}.${bytes[3]}.${bytes[4]}.${bytes[5]}`;
  }
  return undefined;
}

/** True when no tunnel may reach `address` (an IP literal) while private targets are off. */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return forbidden.check(address, 'ipv4');
  if (family !== 6) return true; // not an address at all: never dial it
  const bytes = ipv6ToBytes(address);
  if (bytes === undefined) return true;
  const v4 = embeddedIPv4(bytes);
  // `::` and `::1` are zero-prefixed too; the IPv6 list decides for them.
  if (v4 !== undefined && !bytes.subarray(0, 15).every((b) => b === 0)) {
    if (forbidden.check(v4, 'ipv4')) return true;
  }
  return forbidden.check(address.replace(/%.*$/, ''), 'ipv6');
}

async function lookupAll(host: string): Promise<readonly ResolvedAddress[]> {
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
}

/** Strips the brackets some clients keep around IPv6 literals (`[::1]`). */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export class TargetGuard {
  readonly allowPrivateTargets: boolean;
  private readonly blockedPorts: ReadonlySet<number>;
  private readonly resolve: (host: string) => Promise<readonly ResolvedAddress[]>;

  constructor(options: TargetGuardOptions) {
    this.allowPrivateTargets = options.allowPrivateTargets;
    this.blockedPorts = new Set(options.blockedPorts ?? DEFAULT_BLOCKED_PORTS);
    this.resolve = options.resolve ?? lookupAll;
  }

  /** The port check alone, for exits that resolve names themselves (upstream proxies). */
  checkPort(port: number): TargetCheck | undefined {
    if (port < 1 || port > 65535) {
      return { ok: false, code: 'TARGET_FORBIDDEN', message: `Port ${port} is not a valid port` };
    }
    if (this.blockedPorts.has(port)) {
      return {
        ok: false,
        code: 'PORT_BLOCKED',
        message: `Port ${port} is blocked on this network`,
      };
    }
    return undefined;
  }

  /** A literal's own verdict; undefined when `host` is a name. */
  checkLiteral(host: string): TargetCheck | undefined {
    const literal = unbracket(host);
    const family = isIP(literal);
    if (family === 0) return undefined;
    if (!this.allowPrivateTargets && isForbiddenAddress(literal)) {
      return refuseAddress(host);
    }
    return { ok: true, addresses: [{ address: literal, family: family === 6 ? 6 : 4 }] };
  }

  /** Resolves `host` and keeps only the addresses a tunnel may reach. */
  async check(host: string, port: number): Promise<TargetCheck> {
    const portRefusal = this.checkPort(port);
    if (portRefusal) return portRefusal;
    const literal = this.checkLiteral(host);
    if (literal) return literal;
    let addresses: readonly ResolvedAddress[];
    try {
      addresses = await this.resolve(host);
    } catch (cause) {
      return { ok: false, code: 'DNS_FAILED', message: `Cannot resolve ${host}`, cause };
    }
    const allowed = this.allowPrivateTargets
      ? addresses
      : addresses.filter(({ address }) => !isForbiddenAddress(address));
    if (addresses.length === 0) {
      return { ok: false, code: 'DNS_FAILED', message: `Cannot resolve ${host}` };
    }
    return allowed.length > 0 ? { ok: true, addresses: allowed } : refuseAddress(host);
  }
}

function refuseAddress(host: string): TargetCheck {
  return {
    ok: false,
    code: 'TARGET_FORBIDDEN',
    message: `${host} is a private or reserved address and cannot be reached through the proxy`,
  };
}
