/**
 * The loop every channel's deliverer runs (bot/telegram/deliver.ts,
 * bot/whatsapp/deliver.ts, and email in jobs/email.ts): deliver one due
 * outbox item after another, and
 * when none is due wait `idleMs` (or until poked), until stopped. Stopping
 * lets the item being sent finish.
 */
import type { Logger } from './logger.js';

export abstract class OutboxLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private wake: (() => void) | undefined;

  constructor(
    private readonly loopOptions: {
      logger: Logger;
      /** Names the loop in its error log, e.g. `telegram`. */
      channel: string;
      idleMs?: number | undefined;
    },
  ) {}

  /** Sends one due item; false when nothing was due. */
  abstract deliverOnce(): Promise<boolean>;

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.running = this.loop();
  }

  /** Looks for due items now instead of at the next idle tick. */
  poke(): void {
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let delivered = false;
      try {
        delivered = await this.deliverOnce();
      } catch (error) {
        this.loopOptions.logger.error(
          { err: error },
          `${this.loopOptions.channel}.delivery_loop_failed`,
        );
      }
      if (delivered || this.stopped) continue;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, this.loopOptions.idleMs ?? 1_000);
        this.timer.unref();
      });
      this.wake = undefined;
    }
  }
}
