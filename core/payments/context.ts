import type { Logger } from 'pino';
import type { Clock } from '../../lib/clock.js';
import type { FaultPoints } from '../../lib/faults.js';
import type { PaymentProvider } from '../../lib/payment-provider.js';
import type { SettingsStore } from '../settings.js';

/** What the payment flows receive at start-up (main.ts builds it; tests build their own). */
export interface PaymentsContext {
  provider: PaymentProvider;
  settings: SettingsStore;
  clock: Clock;
  logger: Logger;
  /** PUBLIC_URL: Paystack sends the customer back to `${publicUrl}/payments/callback`. */
  publicUrl: string;
  /** Named gaps between writes where fault-injection tests stop the flow. */
  faults: FaultPoints;
}
