/**
 * The conversation core: one inbound message of one chat identity in, the
 * answer out (bot/core/types.ts), the same for Telegram and WhatsApp.
 *
 *   load chat state -> find or create the identity's account
 *   -> normalise: a number answers the last menu, "0" goes back to it, a
 *      command is an action; /cancel drops a half-finished conversation
 *   -> not signed up yet (no verified email, terms not accepted): sign-up
 *   -> a step waiting for text gets the text; otherwise the action's journey
 *   -> save chat state (the last menu, so numbered replies resolve later)
 *
 * Journeys (bot/core/journeys/*.ts) register actions (`name` or `name:args`)
 * and steps (named waits for text). Every customer-facing sentence lives in
 * bot/core/texts/. A DomainError from core/ reaches the customer as its own
 * message (core words them for people, with the next step); anything else
 * is logged and answered with a reference the customer can quote.
 */
import type { Logger } from '../../lib/logger.js';
import type { Clock } from '../../lib/clock.js';
import type { Mailer } from '../../lib/mailer.js';
import { isDomainError } from '../../lib/errors.js';
import { newRequestId } from '../../lib/ids.js';
import type { PaymentsService } from '../../core/payments/index.js';
import type { SettingsStore } from '../../core/settings.js';
import type { EntitlementPolicy } from '../../core/account-entitlements.js';
import {
  accountForIdentity,
  accountForKnownIdentity,
  type AccountView,
} from '../../core/accounts/index.js';
import { CHAT_STATE_TTL_MS, loadChatState, saveChatState, type TurnState } from './state.js';

const DAY_MS = 86_400_000;
/** Chat identities whose account a process remembers between turns (about 100 bytes each). */
const ACCOUNT_HINTS = 50_000;
import { textsFor, type Texts } from './texts/index.js';
import type { ChatIdentity, Inbound, Menu, Outbound, Reply } from './types.js';

export interface ProxyEndpoints {
  /** The host customers point their apps at. */
  host: string;
  socksPort: number;
  httpPort: number;
  policy: EntitlementPolicy;
}

/** Admins from configuration (ADMIN_TELEGRAM_IDS, ADMIN_WHATSAPP_NUMBERS); more are kept in the database. */
export interface ConfiguredAdmins {
  telegramIds: readonly number[];
  whatsappNumbers: readonly string[];
}

export interface ConversationDeps {
  clock: Clock;
  payments: PaymentsService;
  settings: SettingsStore;
  mailer: Mailer;
  logger: Logger;
  proxy: ProxyEndpoints;
  /** PUBLIC_URL, for links to our own pages (setting an API password); without it none are offered. */
  publicUrl?: string;
  /** Default: none from configuration (database admins only). */
  admins?: ConfiguredAdmins;
}

/** One turn: who, their account, the state to change, and the answer being built. */
export interface Turn {
  readonly deps: ConversationDeps;
  readonly identity: ChatIdentity;
  account: AccountView;
  readonly state: TurnState;
  readonly t: Texts;
  /** Arguments of the action being run (`buy:starter` -> ['starter']). */
  args: string[];
  say(message: Outbound): void;
  text(text: string, menu?: Menu): void;
  /** Waits for the customer's next text at `step`, keeping `data` for it. */
  ask(step: string, text: string, data?: Record<string, unknown>, menu?: Menu): void;
  /** Leaves any step (the conversation is back at the menu). */
  endStep(): void;
  /** Runs another action in the same turn (a journey handing over). */
  go(action: string): Promise<void>;
}

export type ActionHandler = (turn: Turn) => Promise<void>;
export type StepHandler = (turn: Turn, text: string) => Promise<void>;
/**
 * A typed command outside COMMANDS (so not in the Telegram command menu), with
 * the text after it. Runs before COMMANDS and before the sign-up gate; returns
 * false to let the command go on as if it were not registered (a command in
 * COMMANDS of the same name, else "I don't know /x"). The admin commands
 * (journeys/admin.ts) come this way and check admin rights themselves.
 */
export type CommandHandler = (turn: Turn, args: string) => Promise<boolean>;

export interface Journey {
  actions?: Record<string, ActionHandler>;
  steps?: Record<string, StepHandler>;
  commands?: Record<string, CommandHandler>;
}

/** Commands customers can type (and the Telegram command menu lists), each an action. */
export const COMMANDS: readonly { command: string; action: string }[] = [
  { command: 'start', action: 'start' },
  { command: 'menu', action: 'menu' },
  { command: 'plans', action: 'plans' },
  { command: 'connect', action: 'connect' },
  { command: 'usage', action: 'usage' },
  { command: 'why', action: 'why' },
  { command: 'billing', action: 'billing' },
  { command: 'account', action: 'account' },
  { command: 'team', action: 'team' },
  { command: 'help', action: 'help' },
  { command: 'cancel', action: 'cancel' },
];

/** Actions a customer may use before signing up ('admin' checks admin rights itself). */
const OPEN_ACTIONS = new Set(['start', 'help', 'cancel', 'signup', 'terms', 'link', 'admin']);

export class Conversation {
  private readonly actions = new Map<string, ActionHandler>();
  private readonly steps = new Map<string, StepHandler>();
  private readonly commands = new Map<string, CommandHandler>();
  /**
   * Which account each chat identity had at its last turn in this process
   * (oldest dropped past ACCOUNT_HINTS). Only a guess that saves a round
   * trip: accountForKnownIdentity checks it against the account's identities.
   */
  private readonly accountHints = new Map<string, string>();

  constructor(
    private readonly deps: ConversationDeps,
    journeys: Journey[],
  ) {
    for (const journey of journeys) {
      for (const [name, handler] of Object.entries(journey.actions ?? {})) {
        if (this.actions.has(name)) throw new Error(`action ${name} is registered twice`);
        this.actions.set(name, handler);
      }
      for (const [name, handler] of Object.entries(journey.steps ?? {})) {
        if (this.steps.has(name)) throw new Error(`step ${name} is registered twice`);
        this.steps.set(name, handler);
      }
      for (const [name, handler] of Object.entries(journey.commands ?? {})) {
        if (this.commands.has(name)) throw new Error(`command ${name} is registered twice`);
        this.commands.set(name, handler);
      }
    }
  }

  /** Handles one inbound message; never throws for the customer's input. */
  async handle(identity: ChatIdentity, inbound: Inbound): Promise<Reply> {
    const { deps } = this;
    // Both reads at once: a turn's latency is mostly round trips.
    const hintKey = `${identity.channel}:${identity.externalId}`;
    const hint = this.accountHints.get(hintKey);
    const [state, found] = await Promise.all([
      loadChatState(identity),
      (hint === undefined ? Promise.resolve(null) : accountForKnownIdentity(identity, hint))
        .then(
          async (known) =>
            known ?? (await accountForIdentity(identity, { clock: deps.clock })).account,
        )
        .then(
          (account) => ({ ok: true as const, account }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
    ]);
    if (found.ok) this.rememberAccount(hintKey, found.account.id);
    const loaded = snapshot(state);
    const t = textsFor(state.language);
    const messages: Outbound[] = [];
    let accountId: string | null = null;
    try {
      if (!found.ok) throw found.error;
      const { account } = found;
      accountId = account.id;
      const turn = this.turn(identity, account, state, t, messages);
      await this.dispatch(turn, inbound);
      accountId = turn.account.id;
    } catch (error) {
      messages.push({ kind: 'text', text: this.errorText(error, t, identity) });
    }
    state.menu = lastMenu(messages) ?? state.menu;
    // Nothing changed (a step that only reads, with the same menu): no write.
    const fresh =
      state.expiresAt !== null &&
      state.expiresAt.getTime() - deps.clock.now().getTime() > CHAT_STATE_TTL_MS - DAY_MS;
    if (
      state.id !== null &&
      fresh &&
      snapshot(state) === loaded &&
      state.accountChecked === accountId
    ) {
      return { messages, accountId };
    }
    const saved = await saveChatState(identity, accountId, state, deps.clock.now()).catch(
      (error: unknown) => {
        deps.logger.error({ err: error, channel: identity.channel }, 'bot.state_save_failed');
        return false;
      },
    );
    if (!saved) deps.logger.warn({ channel: identity.channel }, 'bot.state_conflict');
    return { messages, accountId };
  }

  private rememberAccount(key: string, accountId: string): void {
    this.accountHints.delete(key);
    this.accountHints.set(key, accountId);
    if (this.accountHints.size > ACCOUNT_HINTS) {
      const oldest = this.accountHints.keys().next().value;
      if (oldest !== undefined) this.accountHints.delete(oldest);
    }
  }

  private turn(
    identity: ChatIdentity,
    account: AccountView,
    state: TurnState,
    t: Texts,
    messages: Outbound[],
  ): Turn {
    const turn: Turn = {
      deps: this.deps,
      identity,
      account,
      state,
      t,
      args: [],
      say: (message) => messages.push(message),
      text: (text, menu) =>
        messages.push(menu ? { kind: 'text', text, menu } : { kind: 'text', text }),
      ask: (step, text, data, menu) => {
        state.step = step;
        if (data) state.data = data;
        turn.text(text, menu);
      },
      endStep: () => {
        state.step = null;
        state.data = {};
      },
      go: (action) => this.runAction(turn, action),
    };
    return turn;
  }

  private async dispatch(turn: Turn, inbound: Inbound): Promise<void> {
    const { state } = turn;
    let action: string | null = null;
    let text: string | null = null;
    switch (inbound.kind) {
      case 'command':
        if (await this.commands.get(inbound.command)?.(turn, inbound.args)) return;
        action = COMMANDS.find((c) => c.command === inbound.command)?.action ?? null;
        // Deep links: t.me/<bot>?start=link_<code> and ?start=join_<code>.
        if (inbound.command === 'start') action = startPayload(inbound.args) ?? action;
        if (!action) {
          turn.text(turn.t.unknownCommand(inbound.command), turn.t.mainMenu(turn.account));
          return;
        }
        break;
      case 'action':
        action = inbound.action;
        break;
      case 'contact':
        text = inbound.phone;
        break;
      case 'text': {
        const trimmed = inbound.text.trim();
        // "LINK ABCD-EFGH", as the other chat tells the customer to send.
        const link = /^link[\s:]+([a-z0-9]{4}-?[a-z0-9]{4})$/i.exec(trimmed);
        if (link) {
          action = `link:${link[1] ?? ''}`;
          break;
        }
        const number = /^\d{1,2}$/.test(trimmed) ? Number(trimmed) : null;
        // A number answers the last menu, unless a step waits for digits (a code).
        if (number !== null && !(state.step && stepTakesDigits(state.step))) {
          if (number === 0) action = 'menu';
          else action = state.menu[number - 1]?.action ?? null;
          if (action === null) {
            turn.text(
              turn.t.noSuchChoice(number, state.menu.length),
              turn.t.mainMenu(turn.account),
            );
            return;
          }
        } else {
          text = trimmed;
        }
        break;
      }
    }

    if (action === 'cancel') {
      const had = state.step !== null;
      turn.endStep();
      turn.text(had ? turn.t.cancelled : turn.t.nothingToCancel, turn.t.mainMenu(turn.account));
      return;
    }
    const signedUp = isSignedUp(turn.account);
    if (action !== null) {
      const { name } = splitAction(action);
      if (!signedUp && !OPEN_ACTIONS.has(name)) {
        await this.runAction(turn, 'signup');
        return;
      }
      // A button pressed in the middle of a conversation leaves it.
      if (state.step !== null && !name.startsWith(state.step.split('.')[0] ?? '')) turn.endStep();
      await this.runAction(turn, action);
      return;
    }
    const step = state.step ? this.steps.get(state.step) : undefined;
    if (step && text !== null) {
      await step(turn, text);
      return;
    }
    if (!signedUp) {
      await this.runAction(turn, 'signup');
      return;
    }
    turn.text(turn.t.notUnderstood, turn.t.mainMenu(turn.account));
  }

  private async runAction(turn: Turn, action: string): Promise<void> {
    const { name, args } = splitAction(action);
    const handler = this.actions.get(name);
    if (!handler) {
      turn.text(turn.t.staleButton, turn.t.mainMenu(turn.account));
      return;
    }
    turn.args = args;
    await handler(turn);
  }

  private errorText(error: unknown, t: Texts, identity: ChatIdentity): string {
    if (isDomainError(error)) return t.refused(error.message);
    const reference = newRequestId().slice(0, 8);
    this.deps.logger.error({ err: error, reference, channel: identity.channel }, 'bot.turn_failed');
    return t.somethingWentWrong(reference);
  }
}

/** Signed up: a verified email and the terms accepted. */
export function isSignedUp(account: AccountView): boolean {
  return account.emailVerified && account.termsAcceptedAt !== null;
}

export function splitAction(action: string): { name: string; args: string[] } {
  const [name = '', ...args] = action.split(':');
  return { name, args };
}

/** Steps whose answer is a number (a verification code), so digits are not menu choices. */
function stepTakesDigits(step: string): boolean {
  return step.endsWith('.code') || step.endsWith('.amount');
}

function lastMenu(messages: Outbound[]): { label: string; action: string }[] | null {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message && 'menu' in message && message.menu) return message.menu.flat();
  }
  return null;
}

function snapshot(state: TurnState): string {
  return JSON.stringify([state.step, state.data, state.menu, state.language]);
}

/** The action a /start payload asks for, or null for a plain /start. */
function startPayload(args: string): string | null {
  const match = /^(link|join)_([a-z0-9-]{4,40})$/i.exec(args.trim());
  if (!match) return null;
  return match[1]?.toLowerCase() === 'link'
    ? `link:${match[2] ?? ''}`
    : `team:join:${match[2] ?? ''}`;
}
