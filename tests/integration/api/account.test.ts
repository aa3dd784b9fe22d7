/**
 * Account self-service over real HTTP (/api/v1/me...), against the real
 * database and a local SMTP capture server: changing the email (a code to the
 * new address first), notification preferences, linking a Telegram or
 * WhatsApp chat both ways with the real conversation core on the same
 * database, and deleting the account. Every route also refuses a caller
 * without a token, and no account can touch another's email, preferences or
 * code.
 */
import { describe, expect, it } from '@jest/globals';
import { accountRoutes } from '../../../api/v1/routes/account.js';
import { createConversation, type Conversation } from '../../../bot/core/index.js';
import type { ChatIdentity, Inbound, Outbound } from '../../../bot/core/types.js';
import { notify } from '../../../core/notifications.js';
import { activateFromPayment } from '../../../core/subscriptions.js';
import { createLogger } from '../../../lib/logger.js';
import { Account } from '../../../models/account.js';
import { ChannelIdentity } from '../../../models/channel-identity.js';
import { useTestDatabase } from '../../support/database.js';
import { useApiHarness, type ApiCustomer } from '../../support/api.js';
import { PROXY } from '../../support/bot.js';

useTestDatabase();
const api = useApiHarness();

const tokenOf = (customer: ApiCustomer) => api.accessToken(customer);
const fresh = (label: string) =>
  `${label}-${Math.random().toString(36).slice(2, 10)}@example.com`.toLowerCase();

/** The 6-digit code in the latest mail to `address`. */
async function mailedCode(address: string): Promise<string> {
  const mail = await api.smtp.waitForMail(
    (m) => m.to.includes(address) && /verification code/.test(m.text),
  );
  const code = /\b(\d{6})\b/.exec(mail.text)?.[1];
  if (!code) throw new Error(`no code in the mail: ${mail.text}`);
  return code;
}

// --- a chat on the same database, through the real conversation core ----------------

let conversation: Conversation | undefined;
let chats = 0;

function chat(channel: 'telegram' | 'whatsapp' = 'telegram') {
  conversation ??= createConversation({
    clock: api.payments.clock,
    payments: api.payments.payments,
    settings: api.payments.settings,
    mailer: api.mailer,
    logger: createLogger({ level: 'silent' }),
    proxy: PROXY,
  });
  const bot = conversation;
  chats += 1;
  const identity: ChatIdentity = {
    channel,
    externalId: String(900_000 + chats * 17 + Math.floor(Math.random() * 1e5)),
    displayName: `Chat ${chats}`,
  };
  let last: Outbound[] = [];
  const handle = async (inbound: Inbound) => {
    last = (await bot.handle(identity, inbound)).messages;
    return textOf(last);
  };
  return {
    identity,
    send: (text: string) => handle({ kind: 'text', text }),
    command: (command: string, args = '') => handle({ kind: 'command', command, args }),
    action: (action: string) => handle({ kind: 'action', action }),
    /** A chat that signed up through the real journey: email, mailed code, terms. */
    async signUp(email: string) {
      await handle({ kind: 'command', command: 'start', args: '' });
      await handle({ kind: 'text', text: email });
      const code = await mailedCode(email);
      expect(await handle({ kind: 'text', text: code })).toContain('Email verified');
      const agree = last
        .flatMap((m) => ('menu' in m && m.menu ? m.menu.flat() : []))
        .find((item) => /agree/i.test(item.label));
      if (!agree) throw new Error(`no terms button: ${textOf(last)}`);
      await handle({ kind: 'action', action: agree.action });
    },
  };
}

function textOf(messages: Outbound[]): string {
  return messages
    .map((m) => ('text' in m ? m.text : 'caption' in m ? (m.caption ?? '') : ''))
    .join('\n');
}

describe('every account route', () => {
  it('refuses a caller without a token (401 TOKEN_MISSING)', async () => {
    expect(accountRoutes.length).toBe(9);
    for (const route of accountRoutes) {
      const res = await api.call(route.method, route.path, {
        ...(route.method === 'get' ? {} : { body: {} }),
      });
      expect([route.operationId, res.status]).toEqual([route.operationId, 401]);
      expect(res.body.error.details.reason).toBe('TOKEN_MISSING');
    }
  });
});

describe('PUT /me/email and POST /me/email/confirm', () => {
  it('changes the email only once the code mailed to the new address is confirmed, and tells the old one', async () => {
    const customer = await api.customer();
    const next = fresh('new');
    const asked = await api.call('put', '/me/email', {
      token: customer.accessToken,
      body: { email: ` ${next.toUpperCase()} ` },
    });
    expect(asked.status).toBe(202);
    expect(asked.body.sentTo).toBe(next);
    const code = await mailedCode(next);

    // Until then the account keeps its current, verified address.
    const before = await api.call('get', '/me', { token: customer.accessToken });
    expect(before.body).toMatchObject({ email: customer.email, emailVerified: true });

    const confirmed = await api.call('post', '/me/email/confirm', {
      token: customer.accessToken,
      body: { code },
    });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ email: next, emailVerified: true });
    const notice = await api.smtp.waitForMail((m) => m.to.includes(customer.email));
    expect(notice.subject).toMatch(/email address was changed/);
    expect(notice.text).toContain(next);
  });

  it('lets an account whose address was never verified correct it', async () => {
    const customer = await api.customer({ verified: false });
    const next = fresh('typo-fixed');
    const asked = await api.call('put', '/me/email', {
      token: customer.accessToken,
      body: { email: next },
    });
    expect(asked.status).toBe(202);
    const confirmed = await api.call('post', '/me/email/confirm', {
      token: customer.accessToken,
      body: { code: await mailedCode(next) },
    });
    expect(confirmed.body).toMatchObject({ email: next, emailVerified: true });
    // Now verified: routes that need it let the account in.
    const prefs = await api.call('get', '/me/notification-preferences', {
      token: customer.accessToken,
    });
    expect(prefs.status).toBe(200);
  });

  it('refuses a bad address, the current address, and an address of another account', async () => {
    const customer = await api.customer();
    const other = await api.customer();
    const bad = await api.call('put', '/me/email', {
      token: customer.accessToken,
      body: { email: 'not-an-address' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.reason).toBe('INVALID_EMAIL');

    const same = await api.call('put', '/me/email', {
      token: customer.accessToken,
      body: { email: customer.email },
    });
    expect(same.status).toBe(400);
    expect(same.body.error.details.reason).toBe('SAME_EMAIL');

    const taken = await api.call('put', '/me/email', {
      token: customer.accessToken,
      body: { email: other.email },
    });
    expect(taken.status).toBe(409);
    expect(taken.body.error.details.reason).toBe('EMAIL_TAKEN');
    expect(api.smtp.messages.some((m) => m.to.includes(other.email))).toBe(false);
  });

  it('sends one code a minute: a second request is 429 with Retry-After, and works after it', async () => {
    const customer = await api.customer();
    const first = await api.call('put', '/me/email', {
      token: customer.accessToken,
      body: { email: fresh('once') },
    });
    expect(first.status).toBe(202);
    const again = await api.call('put', '/me/email', {
      token: customer.accessToken,
      body: { email: fresh('twice') },
    });
    expect(again.status).toBe(429);
    expect(again.body.error.code).toBe('RATE_LIMITED');
    const wait = Number(again.headers.get('retry-after'));
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60);
    expect(again.body.error.details.retryAfterSeconds).toBe(wait);

    api.payments.clock.advanceBy({ seconds: wait });
    const later = await api.call('put', '/me/email', {
      token: tokenOf(customer),
      body: { email: fresh('later') },
    });
    expect(later.status).toBe(202);
  });

  it('counts wrong codes (attempts left) and keeps the address', async () => {
    const customer = await api.customer();
    const none = await api.call('post', '/me/email/confirm', {
      token: customer.accessToken,
      body: { code: '123456' },
    });
    expect(none.status).toBe(400);
    expect(none.body.error.details.reason).toBe('NO_CODE');

    const next = fresh('guess');
    await api.call('put', '/me/email', { token: customer.accessToken, body: { email: next } });
    const code = await mailedCode(next);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    const res = await api.call('post', '/me/email/confirm', {
      token: customer.accessToken,
      body: { code: wrong },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toMatchObject({ reason: 'WRONG_CODE', attemptsLeft: 4 });
    const me = await api.call('get', '/me', { token: customer.accessToken });
    expect(me.body.email).toBe(customer.email);
  });

  it("cannot confirm with another account's code", async () => {
    const victim = await api.customer();
    const attacker = await api.customer();
    const next = fresh('victim-new');
    await api.call('put', '/me/email', { token: victim.accessToken, body: { email: next } });
    const code = await mailedCode(next);
    const stolen = await api.call('post', '/me/email/confirm', {
      token: attacker.accessToken,
      body: { code },
    });
    expect(stolen.status).toBe(400);
    expect((await api.call('get', '/me', { token: attacker.accessToken })).body.email).toBe(
      attacker.email,
    );
    // The victim's code still works for the victim.
    const own = await api.call('post', '/me/email/confirm', {
      token: victim.accessToken,
      body: { code },
    });
    expect(own.body.email).toBe(next);
  });
});

describe('notification preferences', () => {
  it('starts with everything on, mandatory events marked, admin alerts not listed', async () => {
    const customer = await api.customer();
    const res = await api.call('get', '/me/notification-preferences', {
      token: customer.accessToken,
    });
    expect(res.status).toBe(200);
    expect(res.body.channels).toEqual({ telegram: true, whatsapp: true, email: true });
    const events = new Map<string, any>(res.body.events.map((e: any) => [e.event, e]));
    expect(events.get('weekly_summary')).toEqual({
      event: 'weekly_summary',
      on: true,
      mandatory: false,
    });
    expect(events.get('payment_confirmed')).toMatchObject({ on: true, mandatory: true });
    expect(events.has('ledger_drift')).toBe(false);
  });

  it('stops the weekly summary and the WhatsApp channel: the next summary is not mailed', async () => {
    const customer = await api.customer();
    const res = await api.call('put', '/me/notification-preferences', {
      token: customer.accessToken,
      body: { events: { weekly_summary: false }, channels: { whatsapp: false } },
    });
    expect(res.status).toBe(200);
    expect(res.body.channels).toEqual({ telegram: true, whatsapp: false, email: true });
    expect(res.body.mutedEvents).toEqual(['weekly_summary']);
    const read = await api.call('get', '/me/notification-preferences', {
      token: customer.accessToken,
    });
    expect(read.body.events.find((e: any) => e.event === 'weekly_summary').on).toBe(false);

    // What the customer notices: the summary is not sent, a usage warning still is.
    const clock = { clock: api.payments.clock };
    const summary = await notify(
      { accountId: customer.accountId, event: 'weekly_summary', period: 'w1' },
      clock,
    );
    expect(summary.item.deliveries.find((d) => d.channel === 'email')?.status).toBe('skipped');
    const usage = await notify(
      { accountId: customer.accountId, event: 'usage_80', period: 'p1' },
      clock,
    );
    expect(usage.item.deliveries.find((d) => d.channel === 'email')?.status).toBe('pending');

    // And back on.
    const on = await api.call('put', '/me/notification-preferences', {
      token: customer.accessToken,
      body: { events: { weekly_summary: true } },
    });
    expect(on.body.mutedEvents).toEqual([]);
    expect(on.body.channels.whatsapp).toBe(false);
  });

  it('refuses to switch off a mandatory event, or an event that does not exist', async () => {
    const customer = await api.customer();
    const mandatory = await api.call('put', '/me/notification-preferences', {
      token: customer.accessToken,
      body: { events: { payment_confirmed: false } },
    });
    expect(mandatory.status).toBe(400);
    expect(mandatory.body.error.message).toContain('cannot be turned off');
    const unknown = await api.call('put', '/me/notification-preferences', {
      token: customer.accessToken,
      body: { events: { ledger_drift: false } },
    });
    expect(unknown.status).toBe(400);
    const read = await api.call('get', '/me/notification-preferences', {
      token: customer.accessToken,
    });
    expect(read.body.mutedEvents).toEqual([]);
  });

  it('needs a verified email, and changes only the caller’s own preferences', async () => {
    const unverified = await api.customer({ verified: false });
    for (const method of ['get', 'put'] as const) {
      const res = await api.call(method, '/me/notification-preferences', {
        token: unverified.accessToken,
        ...(method === 'put' ? { body: { channels: { email: false } } } : {}),
      });
      expect(res.status).toBe(403);
      expect(res.body.error.details.reason).toBe('EMAIL_NOT_VERIFIED');
    }
    const a = await api.customer();
    const b = await api.customer();
    await api.call('put', '/me/notification-preferences', {
      token: a.accessToken,
      body: { channels: { email: false } },
    });
    const theirs = await api.call('get', '/me/notification-preferences', {
      token: b.accessToken,
    });
    expect(theirs.body.channels.email).toBe(true);
  });
});

describe('linking a chat', () => {
  it('gives a code that a Telegram chat sends as LINK <code>: the chat then uses this account', async () => {
    const customer = await api.customer();
    const res = await api.call('post', '/me/link-codes', { token: customer.accessToken });
    expect(res.status).toBe(201);
    expect(res.body.code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect(res.body.telegram).toEqual({
      botUsername: 'AtlanticProxyBot',
      message: `LINK ${res.body.code}`,
      link: `https://t.me/AtlanticProxyBot?start=link_${res.body.code.replace('-', '')}`,
    });
    expect(res.body.whatsapp.link).toBe(
      `https://wa.me/2348000000000?text=${encodeURIComponent(`LINK ${res.body.code}`)}`,
    );

    const telegram = chat('telegram');
    const reply = await telegram.send(res.body.telegram.message);
    expect(reply).toContain('Linked ✅');
    expect(reply).toContain(customer.email);
    const me = await api.call('get', '/me', { token: customer.accessToken });
    expect(me.body.identities).toEqual([
      { channel: 'telegram', externalId: telegram.identity.externalId },
    ]);
    // The code works once.
    const again = await chat('whatsapp').send(res.body.whatsapp.message);
    expect(again).toContain('already been used');
  });

  it('works through the Telegram deep link (/start link_<code>)', async () => {
    const customer = await api.customer();
    const res = await api.call('post', '/me/link-codes', { token: customer.accessToken });
    const payload = new URL(res.body.telegram.link).searchParams.get('start') ?? '';
    const reply = await chat('telegram').command('start', payload);
    expect(reply).toContain('Linked ✅');
    const me = await api.call('get', '/me', { token: customer.accessToken });
    expect(me.body.identities.map((i: any) => i.channel)).toEqual(['telegram']);
  });

  it('links the chat that made a code (Account → Link in the bot) to this account', async () => {
    const customer = await api.customer();
    const telegram = chat('telegram');
    const chatEmail = fresh('chat');
    await telegram.signUp(chatEmail);
    const shown = await telegram.action('account:linkcode');
    const code = /Your link code: ([A-Z2-9]{4}-[A-Z2-9]{4})/.exec(shown)?.[1];
    expect(code).toBeDefined();
    const chatAccount = await ChannelIdentity.findOne({
      channel: 'telegram',
      externalId: telegram.identity.externalId,
    }).lean();

    const res = await api.call('post', '/me/link', {
      token: customer.accessToken,
      body: { code: (code ?? '').toLowerCase() },
    });
    expect(res.status).toBe(200);
    expect(res.body.linked).toEqual(['telegram']);
    expect(res.body.account.identities).toEqual([
      { channel: 'telegram', externalId: telegram.identity.externalId },
    ]);
    expect(res.body.account.email).toBe(customer.email);

    // The chat now shows the API account; its own empty account is closed, its address freed.
    expect(await telegram.action('account')).toContain(`Email: ${customer.email}`);
    const closed = await Account.findById(chatAccount?.accountId).lean();
    expect(closed).toMatchObject({ status: 'deleted' });
    expect(closed?.email).toBeUndefined();
  });

  it('refuses a wrong code, a used code, and a code made by another API account', async () => {
    const customer = await api.customer();
    const wrong = await api.call('post', '/me/link', {
      token: customer.accessToken,
      body: { code: 'ABCD-EFGH' },
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.details.reason).toBe('INVALID_CODE');

    // Another API account's code (no chat behind it) neither links nor closes that account.
    const other = await api.customer();
    const theirs = await api.call('post', '/me/link-codes', { token: other.accessToken });
    const stolen = await api.call('post', '/me/link', {
      token: customer.accessToken,
      body: { code: theirs.body.code },
    });
    expect(stolen.status).toBe(400);
    expect(stolen.body.error.details.reason).toBe('NOT_A_CHAT_CODE');
    const still = await api.call('get', '/me', { token: other.accessToken });
    expect(still.body).toMatchObject({ status: 'active', email: other.email });

    // Used: linked once by a chat, the same code cannot be redeemed again.
    const own = await api.call('post', '/me/link-codes', { token: customer.accessToken });
    await chat('telegram').send(own.body.telegram.message);
    const used = await api.call('post', '/me/link', {
      token: customer.accessToken,
      body: { code: own.body.code },
    });
    expect(used.status).toBe(400);
    expect(used.body.error.details.reason).toBe('CODE_USED');
  });

  it('refuses to close a chat account that has a plan: nothing moves', async () => {
    const customer = await api.customer();
    const telegram = chat('telegram');
    await telegram.signUp(fresh('paying'));
    const identity = await ChannelIdentity.findOne({
      channel: 'telegram',
      externalId: telegram.identity.externalId,
    }).lean();
    await activateFromPayment({
      accountId: String(identity?.accountId),
      planCode: 'starter',
      paymentRef: `ref_link_${Date.now()}`,
      clock: api.payments.clock,
    });
    const code = /Your link code: (\S+)/.exec(await telegram.action('account:linkcode'))?.[1];
    const res = await api.call('post', '/me/link', {
      token: customer.accessToken,
      body: { code },
    });
    expect(res.status).toBe(409);
    expect(res.body.error.details.reason).toBe('IDENTITY_HAS_ACCOUNT');
    const me = await api.call('get', '/me', { token: customer.accessToken });
    expect(me.body.identities).toEqual([]);
    expect(await Account.findById(identity?.accountId).lean()).toMatchObject({ status: 'active' });
  });

  it('allows 10 link attempts an hour per account, then 429 with Retry-After', async () => {
    const customer = await api.customer();
    for (let i = 0; i < 10; i++) {
      const res = await api.call('post', '/me/link', {
        token: customer.accessToken,
        body: { code: 'ZZZZ-ZZZZ' },
      });
      expect(res.status).toBe(400);
    }
    const limited = await api.call('post', '/me/link', {
      token: customer.accessToken,
      body: { code: 'ZZZZ-ZZZZ' },
    });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('needs a verified email for both link routes', async () => {
    const unverified = await api.customer({ verified: false });
    const create = await api.call('post', '/me/link-codes', { token: unverified.accessToken });
    expect(create.status).toBe(403);
    const redeem = await api.call('post', '/me/link', {
      token: unverified.accessToken,
      body: { code: 'ABCD-EFGH' },
    });
    expect(redeem.status).toBe(403);
    expect(redeem.body.error.details.reason).toBe('EMAIL_NOT_VERIFIED');
  });
});

describe('deleting the account', () => {
  it('says what is erased and kept, then deletes on "DELETE": the token stops working', async () => {
    const customer = await api.customer();
    const bystander = await api.customer();
    const described = await api.call('get', '/me/deletion', { token: customer.accessToken });
    expect(described.status).toBe(200);
    expect(described.body.erased).toContain(
      'Your email address (you can use it again for a new account).',
    );
    expect(described.body.kept).toContain('Invoices and credit notes.');
    expect(described.body.wallet).toBeNull();

    const deleted = await api.call('delete', '/me', {
      token: customer.accessToken,
      body: { confirm: 'DELETE' },
    });
    expect(deleted.status).toBe(204);
    const after = await api.call('get', '/me', { token: customer.accessToken });
    expect(after.status).toBe(401);
    const stored = await Account.findById(customer.accountId).lean();
    expect(stored).toMatchObject({ status: 'deleted' });
    expect(stored?.email).toBeUndefined();
    // Only the caller's account.
    const other = await api.call('get', '/me', { token: bystander.accessToken });
    expect(other.body).toMatchObject({ status: 'active', email: bystander.email });
  });

  it('deletes nothing without the explicit confirmation', async () => {
    const customer = await api.customer();
    for (const body of [{}, { confirm: 'delete' }, { confirm: true }]) {
      const res = await api.call('delete', '/me', { token: customer.accessToken, body });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    }
    const me = await api.call('get', '/me', { token: customer.accessToken });
    expect(me.body.status).toBe('active');
  });

  it('lets an account with an unverified address see and delete itself', async () => {
    const customer = await api.customer({ verified: false });
    const described = await api.call('get', '/me/deletion', { token: customer.accessToken });
    expect(described.status).toBe(200);
    const deleted = await api.call('delete', '/me', {
      token: customer.accessToken,
      body: { confirm: 'DELETE' },
    });
    expect(deleted.status).toBe(204);
    expect((await Account.findById(customer.accountId).lean())?.status).toBe('deleted');
  });
});
