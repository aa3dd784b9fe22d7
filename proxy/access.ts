/**
 * The seam between the gateway's wire protocols (SOCKS5, HTTP proxy, relay)
 * and the business rules behind a tunnel (credentials, entitlements, exits,
 * quota leases, metering). The listeners only speak these types; the access
 * controller behind them answers from memory, so no database round trip sits
 * on the hot path.
 *
 *   listener parses a request -> authorize() -> refused: reply with the reason
 *                                            -> granted: dial grant.exit, relay,
 *                                               ask grant.allow(n) before every
 *                                               write, grant.close() at the end.
 */
import type { Protocol } from '../models/plan.js';

export type { Protocol };

/** How to reach the target: from this host, or through an upstream proxy. */
export type ExitRoute =
  | { kind: 'direct'; id: string }
  | {
      kind: 'socks5' | 'http';
      id: string;
      host: string;
      port: number;
      username?: string;
      password?: string;
    };

export interface AccessRequest {
  /** As sent, options included (`alice-country-ng-session-ab12`). */
  username: string;
  password: string;
  /** `http` = plain forwarding, `https` = HTTP CONNECT, `socks5` = SOCKS5 CONNECT. */
  protocol: Protocol;
  /** The destination as the client named it (a DNS name or an IP literal). */
  host: string;
  port: number;
  /** The client's address, for rate limits and the failed-login record. */
  sourceIp: string;
}

/** Why a request is refused; `authentication` failures answer 407 / SOCKS auth failure. */
export type AccessRefusalKind = 'authentication' | 'rate_limited' | 'entitlement' | 'target';

export interface AccessRefusal {
  ok: false;
  kind: AccessRefusalKind;
  /** A closed code (entitlement RefusalCode, or BAD_CREDENTIALS, TOO_MANY_ATTEMPTS, TARGET_FORBIDDEN, ...). */
  code: string;
  /** For people: what was refused and what lifts it. */
  message: string;
}

export interface AccessGrant {
  ok: true;
  grant: TunnelGrant;
}

export type AccessDecision = AccessGrant | AccessRefusal;

export interface TunnelGrant {
  accountId: string;
  /** The exit chosen for this tunnel (sticky per session id, else rotating). */
  exit: ExitRoute;
  /**
   * How many of the next `bytes` relayed bytes may be delivered (0..bytes),
   * synchronously, from this process's local lease; `up` = client to target,
   * `down` = target to client. Fewer than asked means the local lease is spent:
   * deliver that many, hold the rest and ask waitForAllowance().
   */
  allow(bytes: number, direction?: 'up' | 'down'): number;
  /**
   * After allow() gave fewer bytes than asked: resolves `true` once more may be
   * asked for (the lease was renewed), `false` when the quota or wallet is
   * spent (deliver what was allowed, then end the tunnel). Optional while the
   * access layer catches up; without it a short allow() ends the tunnel.
   */
  waitForAllowance?(): Promise<boolean>;
  /** The access controller cuts the tunnel (quota out, disconnect, revoked); the listener closes both sockets. */
  onCut(listener: (code: string) => void): void;
  /** Dialling the exit failed: mark it unhealthy so the next tunnel picks another. */
  exitFailed(error: Error): void;
  /**
   * The target guard refused the destination (a private address, a blocked
   * port): kept in the customer's "why did my proxy fail" history.
   */
  targetRefused?(code: string, message: string): void;
  /** The tunnel ended: free the connection slot; `bytes` relayed both ways (equals what allow() granted). */
  close(): void;
}

export interface AccessController {
  authorize(request: AccessRequest): Promise<AccessDecision>;
  /**
   * Checks credentials alone (SOCKS5 asks for them, RFC 1929, before the
   * client names a target): a refusal, or undefined when they are good.
   */
  authenticate?(
    request: Pick<AccessRequest, 'username' | 'password' | 'sourceIp'>,
  ): Promise<AccessRefusal | undefined>;
}
