/**
 * A process role (api, proxy, jobs, telegram, whatsapp). main.ts starts the
 * roles that ROLES selects and, on SIGTERM/SIGINT, stops them in reverse order.
 */
export interface Role {
  readonly name: string;
  /** Resolves once the role serves (listening, polling, processing). */
  start(): Promise<void>;
  /** Drains: stops taking new work, lets running work finish, then releases resources. */
  stop(): Promise<void>;
}
