/**
 * WhatsApp deliveries from the notification outbox: while the connection is
 * open, claim the oldest due WhatsApp slot atomically
 * (core/notifications.ts claimNext, so several processes never send the
 * same item), render it (bot/core/notices.ts), send it to the customer's
 * number (or every admin number for an admin alert), and record the outcome.
 *
 * Each number is checked with `onWhatsApp` first (a yes is remembered for
 * an hour):
 * a customer's number that is not on WhatsApp fails the slot for good and
 * marks the channel as failing, so later notifications skip it until the
 * customer writes again; an admin number that is not on WhatsApp is logged
 * and skipped. A failed check, a closed connection or a send error is
 * retried with the outbox's backoff. No recipient at all (no WhatsApp
 * identity, no admin numbers) settles the slot as skipped.
 */
import { OutboxLoop } from '../../lib/outbox-loop.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import {
  claimNext,
  markChannelFailing,
  markFailed,
  markSent,
  markSkipped,
  type ClaimedDelivery,
} from '../../core/notifications.js';
import { ChannelIdentity } from '../../models/channel-identity.js';
import { renderNotice } from '../core/notices.js';
import { textsFor } from '../core/texts/index.js';
import { sendOutbound, type WhatsAppSocketLike } from './adapter.js';

export interface WhatsAppDelivererOptions {
  /** The open socket, or undefined while disconnected (nothing is claimed then). */
  socket: () => WhatsAppSocketLike | undefined;
  clock: Clock;
  logger: Logger;
  workerId: string;
  /** ADMIN_WHATSAPP_NUMBERS (E.164 digits), for admin alerts. */
  adminNumbers: () => Promise<readonly string[]>;
  /** How long to wait when nothing is due or the connection is down (default 1 s). */
  idleMs?: number;
  /** How long a claim holds before another worker may take it (default 2 min). */
  leaseMs?: number;
  /** How long an `onWhatsApp` answer is trusted (default 1 h). */
  lookupTtlMs?: number;
}

/** The number is not on WhatsApp: permanent for this delivery. */
export class NotOnWhatsApp extends Error {
  constructor(readonly number: string) {
    super(`${number} is not on WhatsApp`);
    this.name = 'NotOnWhatsApp';
  }
}

/** WhatsApp did not answer the `onWhatsApp` query: try again later. */
class LookupFailed extends Error {
  constructor(number: string) {
    super(`could not check whether ${number} is on WhatsApp`);
    this.name = 'LookupFailed';
  }
}

class Disconnected extends Error {
  constructor() {
    super('the WhatsApp connection closed');
    this.name = 'Disconnected';
  }
}

export class WhatsAppDeliverer extends OutboxLoop {
  /** number -> the jid WhatsApp gave for it, and until when that is trusted. */
  private readonly lookups = new Map<string, { jid: string; untilMs: number }>();
  constructor(private readonly options: WhatsAppDelivererOptions) {
    super({ logger: options.logger, channel: 'whatsapp', idleMs: options.idleMs });
  }

  /** Claims and sends one due item; false when nothing was due or the connection is down. */
  async deliverOnce(): Promise<boolean> {
    const { clock, workerId, logger } = this.options;
    if (!this.options.socket()) return false;
    const claimed = await claimNext('whatsapp', {
      workerId,
      clock,
      leaseMs: this.options.leaseMs ?? 120_000,
    });
    if (!claimed) return false;
    try {
      const numbers = await this.numbersOf(claimed);
      if (numbers.length === 0) {
        await markSkipped(
          claimed.itemId,
          'whatsapp',
          `no WhatsApp number for ${claimed.audience}`,
          {
            clock,
            workerId,
          },
        );
        logger.info({ itemId: claimed.itemId, event: claimed.event }, 'whatsapp.delivery_skipped');
        return true;
      }
      await this.send(claimed, numbers);
      await markSent(claimed.itemId, 'whatsapp', { clock, workerId });
    } catch (error) {
      await this.failed(claimed, error);
    }
    return true;
  }

  private async send(claimed: ClaimedDelivery, numbers: readonly string[]): Promise<void> {
    const messages = await renderNotice(textsFor('en'), claimed);
    let reached = 0;
    let unreachable: NotOnWhatsApp | undefined;
    for (const number of numbers) {
      const socket = this.options.socket();
      if (!socket) throw new Disconnected();
      const jid = await this.jidOf(socket, number);
      if (jid === null) {
        unreachable = new NotOnWhatsApp(number);
        this.options.logger.warn({ number, itemId: claimed.itemId }, 'whatsapp.not_on_whatsapp');
        continue;
      }
      await sendOutbound(socket, jid, messages);
      reached += 1;
    }
    if (reached === 0 && unreachable) throw unreachable;
  }

  private async jidOf(socket: WhatsAppSocketLike, number: string): Promise<string | null> {
    const nowMs = Date.now();
    const known = this.lookups.get(number);
    if (known && known.untilMs > nowMs) return known.jid;
    const results = await socket.onWhatsApp(number);
    if (results === undefined) throw new LookupFailed(number);
    const found = results.find((result) => result.exists);
    if (!found) return null;
    // Only a yes is remembered: a number that joins WhatsApp and writes to us works at once.
    if (this.lookups.size > 10_000) this.lookups.clear();
    this.lookups.set(number, {
      jid: found.jid,
      untilMs: nowMs + (this.options.lookupTtlMs ?? 3_600_000),
    });
    return found.jid;
  }

  private async numbersOf(claimed: ClaimedDelivery): Promise<readonly string[]> {
    if (claimed.audience === 'admins') return this.options.adminNumbers();
    if (!claimed.accountId) return [];
    const identity = await ChannelIdentity.findOne({
      accountId: claimed.accountId,
      channel: 'whatsapp',
    }).lean<{ externalId: string }>();
    return identity ? [identity.externalId] : [];
  }

  private async failed(claimed: ClaimedDelivery, error: unknown): Promise<void> {
    const { clock, workerId, logger } = this.options;
    const notOnWhatsApp = error instanceof NotOnWhatsApp;
    if (notOnWhatsApp && claimed.audience === 'customer' && claimed.accountId) {
      await markChannelFailing(claimed.accountId, 'whatsapp', error.message, { clock });
    }
    const status = await markFailed(claimed.itemId, 'whatsapp', error, {
      clock,
      workerId,
      retryable: !notOnWhatsApp,
    });
    logger.warn(
      { err: error, itemId: claimed.itemId, event: claimed.event, status },
      notOnWhatsApp ? 'whatsapp.delivery_unreachable' : 'whatsapp.delivery_failed',
    );
  }
}
