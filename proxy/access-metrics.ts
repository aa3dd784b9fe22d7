/**
 * Prometheus metrics of the access layer, on the registry the process passes
 * in (lib/metrics.ts), so the api role serves them at GET /metrics.
 *
 * Names start with `atlantic_access_`: the wire layer (proxy/gateway.ts)
 * already registers `atlantic_proxy_auth_failures_total` and
 * `atlantic_proxy_refusals_total` by the code it answered with, and one name
 * may be registered once per registry. These count what only the access layer
 * knows: the finer reason behind a failed login (unknown user, wrong secret,
 * revoked), refusals and cuts by stage, leases and PAYG charges.
 *
 * Exit health is read when scraped, from the pool the gateway is using at
 * that moment, so an exit removed by an admin disappears from the metrics too.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { ProxyAuthFailureReason } from '../models/proxy-auth-failure.js';

/** One exit as the scrape reports it: `healthy` = the picker would use it now. */
export interface ExitHealthSample {
  location: string;
  exit: string;
  healthy: boolean;
}

export type LeaseFailureReason = 'exhausted' | 'error' | 'lost';
export type PaygChargeOutcome = 'charged' | 'refused' | 'error';

export class AccessMetrics {
  readonly registry: Registry;
  private readonly authFailures: Counter<'reason'>;
  private readonly refusals: Counter<'code' | 'stage'>;
  private readonly leaseRenewals: Counter;
  private readonly leasedBytes: Counter;
  private readonly leaseFailures: Counter<'reason'>;
  private readonly paygCharges: Counter<'outcome'>;
  private exitHealthSource: () => Iterable<ExitHealthSample> = () => [];

  /** Without a registry the metrics are kept on a private one (tests, tools). */
  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    const registers = [registry];
    this.authFailures = new Counter({
      name: 'atlantic_access_auth_failures_total',
      help: 'Failed proxy logins by reason (BAD_SECRET, UNKNOWN_USER, REVOKED, MALFORMED_USERNAME, TOO_MANY_ATTEMPTS)',
      labelNames: ['reason'],
      registers,
    });
    this.refusals = new Counter({
      name: 'atlantic_access_refusals_total',
      help: 'Authenticated tunnels refused (stage=refused) or cut (stage=cut), by reason code',
      labelNames: ['code', 'stage'],
      registers,
    });
    this.leaseRenewals = new Counter({
      name: 'atlantic_access_lease_renewals_total',
      help: 'Quota leases taken or renewed with at least one byte',
      registers,
    });
    this.leasedBytes = new Counter({
      name: 'atlantic_access_leased_bytes_total',
      help: 'Bytes leased from quota counters',
      registers,
    });
    this.leaseFailures = new Counter({
      name: 'atlantic_access_lease_failures_total',
      help: 'Lease renewals that got nothing (exhausted), failed (error), or leases reclaimed while held (lost)',
      labelNames: ['reason'],
      registers,
    });
    this.paygCharges = new Counter({
      name: 'atlantic_access_payg_hourly_charges_total',
      help: 'PAYG connected-hour debits asked by this gateway, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    const source = () => this.exitHealthSource();
    new Gauge({
      name: 'atlantic_access_exit_healthy',
      help: 'Per exit: 1 when the gateway would use it now, 0 while it is skipped as failing',
      labelNames: ['location', 'exit'],
      registers,
      collect() {
        this.reset();
        for (const sample of source()) {
          this.set({ location: sample.location, exit: sample.exit }, sample.healthy ? 1 : 0);
        }
      },
    });
  }

  authFailure(reason: ProxyAuthFailureReason): void {
    this.authFailures.inc({ reason });
  }

  refusal(code: string, stage: 'refused' | 'cut'): void {
    this.refusals.inc({ code, stage });
  }

  leaseRenewed(bytes: number): void {
    this.leaseRenewals.inc();
    this.leasedBytes.inc(bytes);
  }

  leaseFailed(reason: LeaseFailureReason): void {
    this.leaseFailures.inc({ reason });
  }

  paygCharge(outcome: PaygChargeOutcome): void {
    this.paygCharges.inc({ outcome });
  }

  /** Where the exit-health gauge reads its samples at scrape time. */
  readExitHealthFrom(source: () => Iterable<ExitHealthSample>): void {
    this.exitHealthSource = source;
  }
}
