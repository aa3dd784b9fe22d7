/**
 * The email channel's delivery loop, run by the jobs role: deliver one due
 * outbox email after another (core/email/deliver.ts), and when none is due
 * wait `idleMs` (or until poked), until stopped. Stopping lets the mail being
 * sent finish. Several jobs processes may run it at once: claims are atomic.
 */
import { EmailDeliverer, type EmailDelivererOptions } from '../core/email/deliver.js';
import { OutboxLoop } from '../lib/outbox-loop.js';

export interface EmailDeliveryOptions extends EmailDelivererOptions {
  /** How long to wait when nothing is due (default 1 s). */
  idleMs?: number;
}

export interface EmailDelivery {
  /** Looks for due mail now instead of at the next idle tick. */
  poke(): void;
  /** Stops claiming and waits for the mail being sent. */
  stop(): Promise<void>;
}

/** The email deliverer on the shared outbox loop (lib/outbox-loop.ts). */
class EmailLoop extends OutboxLoop {
  private readonly deliverer: EmailDeliverer;

  constructor(options: EmailDeliveryOptions) {
    super({
      logger: options.logger.child({ workerId: options.workerId }),
      channel: 'email',
      idleMs: options.idleMs,
    });
    this.deliverer = new EmailDeliverer(options);
  }

  deliverOnce(): Promise<boolean> {
    return this.deliverer.deliverOnce();
  }
}

export function startEmailDelivery(options: EmailDeliveryOptions): EmailDelivery {
  const loop = new EmailLoop(options);
  loop.start();
  return { poke: () => loop.poke(), stop: () => loop.stop() };
}
