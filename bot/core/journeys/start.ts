/**
 * Start, sign-up and the frame around everything: /start greets and signs up
 * (email, 6-digit code, terms) or recognises a customer; then the first-run
 * guide. /menu and /help.
 */
import { isDomainError } from '../../../lib/errors.js';
import { acceptTerms, confirmEmailCode, requestEmailCode } from '../../../core/accounts/index.js';
import { getLiveSubscription } from '../../../core/subscriptions.js';
import { isSignedUp, type Journey, type Turn } from '../conversation.js';

function showMenu(turn: Turn): Promise<void> {
  turn.endStep();
  turn.text(turn.t.menuTitle, turn.t.mainMenu(turn.account));
  return Promise.resolve();
}

function askEmail(turn: Turn): Promise<void> {
  turn.ask('signup.email', turn.t.askEmail);
  return Promise.resolve();
}

async function sendCode(turn: Turn, email: string): Promise<void> {
  const { deps } = turn;
  const sent = await requestEmailCode(
    { clock: deps.clock, mailer: deps.mailer, logger: deps.logger },
    turn.account.id,
    email,
  );
  const minutes = Math.round((sent.expiresAt.getTime() - deps.clock.now().getTime()) / 60_000);
  turn.ask('signup.code', turn.t.codeSent(sent.sentTo, minutes), { email: sent.sentTo });
}

async function afterVerified(turn: Turn): Promise<void> {
  if (turn.account.termsAcceptedAt === null) {
    turn.endStep();
    turn.text(turn.t.termsPrompt, turn.t.termsMenu);
    return;
  }
  await firstRunOrMenu(turn);
}

async function firstRunOrMenu(turn: Turn): Promise<void> {
  turn.endStep();
  const live = await getLiveSubscription(turn.account.id);
  if (!live) {
    turn.text(turn.t.firstRunGuide, turn.t.firstRunMenu);
    return;
  }
  await showMenu(turn);
}

export const startJourney: Journey = {
  actions: {
    async start(turn) {
      if (isSignedUp(turn.account) && turn.account.email) {
        turn.text(turn.t.welcomeBack(turn.account.email));
        await firstRunOrMenu(turn);
        return;
      }
      turn.text(turn.t.welcome);
      await turn.go('signup');
    },
    async signup(turn) {
      if (turn.args[0] === 'resend') {
        const email = turn.state.data.email;
        if (typeof email === 'string') {
          await sendCode(turn, email);
          return;
        }
      }
      if (turn.account.emailVerified) {
        await afterVerified(turn);
        return;
      }
      await askEmail(turn);
    },
    async terms(turn) {
      if (turn.args[0] !== 'accept') return showMenu(turn);
      if (!turn.account.emailVerified) return askEmail(turn);
      turn.account = await acceptTerms({ clock: turn.deps.clock }, turn.account.id);
      await firstRunOrMenu(turn);
    },
    menu: showMenu,
    help(turn) {
      turn.text(turn.t.help, turn.t.mainMenu(turn.account));
      return Promise.resolve();
    },
  },
  steps: {
    async 'signup.email'(turn, text) {
      await sendCode(turn, text);
    },
    async 'signup.code'(turn, text) {
      try {
        turn.account = await confirmEmailCode(
          { clock: turn.deps.clock, mailer: turn.deps.mailer, logger: turn.deps.logger },
          turn.account.id,
          text.replace(/\s+/g, ''),
        );
      } catch (error) {
        if (!isDomainError(error, 'VALIDATION_FAILED')) throw error;
        const details = error.details ?? {};
        if (details.reason === 'CODE_EXPIRED') {
          turn.ask('signup.email', turn.t.codeExpired, {}, turn.t.resendMenu);
          return;
        }
        const left = typeof details.attemptsLeft === 'number' ? details.attemptsLeft : null;
        if (left === null) {
          turn.text(error.message);
          return;
        }
        if (left === 0) turn.ask('signup.email', turn.t.wrongCode(0));
        else turn.text(turn.t.wrongCode(left), turn.t.resendMenu);
        return;
      }
      await afterVerified(turn);
    },
  },
};
