/**
 * The email channel's delivery loop, run by the jobs role: deliver one due
 * outbox email after another (core/email/deliver.ts), and when none is due
 * wait `idleMs` (or until poked), until stopped. Stopping lets the mail being
 * sent finish. Several jobs processes may run it at once: claims are atomic.
 *
 * The same loop as bot/core/outbox-loop.ts, which edges cannot share (edges
 * never import each other); it belongs in lib/ once both use it.
 */
import { EmailDeliverer, type EmailDelivererOptions } from '../core/email/deliver.js';

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

export function startEmailDelivery(options: EmailDeliveryOptions): EmailDelivery {
  const deliverer = new EmailDeliverer(options);
  const logger = options.logger.child({ channel: 'email', workerId: options.workerId });
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const loop = async (): Promise<void> => {
    while (!stopped) {
      let delivered = false;
      try {
        delivered = await deliverer.deliverOnce();
      } catch (error) {
        // The database or a bug, not a mail: the next tick tries again.
        logger.error({ err: error }, 'email.delivery_loop_failed');
      }
      if (delivered || stopped) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, options.idleMs ?? 1_000);
        timer.unref();
      });
      wake = undefined;
    }
  };
  const running = loop();

  return {
    poke: () => wake?.(),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      wake?.();
      await running;
    },
  };
}
