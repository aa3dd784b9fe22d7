/**
 * The measurement behind bench/bot.bench.ts, run compiled in a process of its
 * own (`node bench/bot-steps.js` in the compiled tree prints the table).
 *
 * One conversation step through grammY's `handleUpdate`, with a recorded API
 * (every Bot API call is answered in-process with a canned result, so the
 * figure is the bot's own work, not the network): a signed-up customer with
 * a plan presses "Plans" (chat state read and written, account found, plans
 * compared, a long message with a keyboard sent) and types "/usage" (quota,
 * sessions, buckets). The peer in the same run is a minimal grammY bot that
 * answers the same update with a fixed text. Database: the in-process engine.
 *
 * Target (issue 6): median at most 2x the minimal bot's.
 */
import { fileURLToPath } from 'node:url';
import { Bot, session, type Context, type SessionFlavor } from 'grammy';
import type { Update, UserFromGetMe } from 'grammy/types';
import mongoose from 'mongoose';
import { pino } from 'pino';
import { createConversation } from '../bot/core/index.js';
import { createTelegramBot } from '../bot/telegram/bot.js';
import { acceptTerms, accountForIdentity } from '../core/accounts/index.js';
import { createSettingsStore } from '../core/settings.js';
import { seedPlans } from '../core/plans.js';
import { activateFromPayment } from '../core/subscriptions.js';
import { PaymentsService } from '../core/payments/index.js';
import { systemClock } from '../lib/clock.js';
import { noFaults } from '../lib/faults.js';
import { startMongoEngine } from '../lib/mongo-engine/index.js';
import { Account } from '../models/account.js';

type SessionContext = Context & SessionFlavor<{ steps: number }>;

const STEPS = Number(process.env.BENCH_BOT_STEPS ?? 2_000);
const ROUNDS = Number(process.env.BENCH_BOT_ROUNDS ?? 3);
const botInfo: UserFromGetMe = {
  id: 42,
  is_bot: true,
  first_name: 'Atlantic',
  username: 'atlantic_bench_bot',
  can_join_groups: false,
  can_read_all_group_messages: false,
  supports_inline_queries: false,
  can_connect_to_business: false,
  has_main_web_app: false,
  has_topics_enabled: false,
  allows_users_to_create_topics: false,
  can_manage_bots: false,
  supports_join_request_queries: false,
};

/** Answers every API call in-process, as Telegram would, without a network. */
function recordApi<C extends Context>(bot: Bot<C>): { calls: number } {
  const record = { calls: 0 };
  bot.api.config.use((_prev, method, payload) => {
    record.calls += 1;
    const chatId = (payload as { chat_id?: number }).chat_id ?? 1;
    const result =
      method === 'answerCallbackQuery'
        ? true
        : {
            message_id: record.calls,
            date: Math.floor(Date.now() / 1000),
            chat: { id: chatId, type: 'private', first_name: 'Bench' },
            text: (payload as { text?: string }).text ?? '',
          };
    return Promise.resolve({ ok: true, result } as never);
  });
  return record;
}

let updateId = 0;
function callback(userId: number, data: string): Update {
  updateId += 1;
  return {
    update_id: updateId,
    callback_query: {
      id: String(updateId),
      chat_instance: '1',
      data,
      from: { id: userId, is_bot: false, first_name: 'Bench' },
      message: {
        message_id: 1,
        date: Math.floor(Date.now() / 1000),
        chat: { id: userId, type: 'private', first_name: 'Bench' },
        text: 'menu',
      },
    },
  };
}
function command(userId: number, text: string): Update {
  updateId += 1;
  return {
    update_id: updateId,
    message: {
      message_id: updateId,
      date: Math.floor(Date.now() / 1000),
      chat: { id: userId, type: 'private', first_name: 'Bench' },
      from: { id: userId, is_bot: false, first_name: 'Bench' },
      text,
      entities: [{ type: 'bot_command', offset: 0, length: text.length }],
    },
  };
}

async function time(
  handle: (update: Update) => Promise<void>,
  make: () => Update,
): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const update = make();
    const start = process.hrtime.bigint();
    await handle(update);
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return samples;
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

export async function measureBotSteps(write: (line: string) => void): Promise<void> {
  const engine = await startMongoEngine();
  await mongoose.connect(engine.uri, { dbName: 'bench_bot' });
  const logger = pino({ level: 'silent' });
  const clock = systemClock;
  await seedPlans(clock);
  const settings = createSettingsStore({ clock });
  const payments = new PaymentsService(
    {
      provider: null as never, // no payment is made in this benchmark
      settings,
      clock,
      logger,
      publicUrl: 'http://bench.invalid',
      faults: noFaults,
    },
    'sk_bench',
  );
  const conversation = createConversation({
    clock,
    payments,
    settings,
    mailer: { send: () => Promise.resolve({ messageId: 'bench' }) },
    logger,
    proxy: {
      host: 'proxy.bench',
      socksPort: 1080,
      httpPort: 8080,
      policy: { httpsOnlyPorts: [443], blockedPorts: [25] },
    },
  });
  const atlantic = createTelegramBot({
    token: '1:bench',
    apiRoot: 'http://bench.invalid',
    conversation,
    logger,
    botInfo,
    rateLimit: { updates: 1_000_000, windowMs: 1_000 },
  });
  recordApi(atlantic);
  const minimal = new Bot('1:bench', { botInfo });
  recordApi(minimal);
  minimal.on('callback_query:data', async (ctx) => {
    await ctx.answerCallbackQuery();
    await ctx.reply('Fixed answer.');
  });
  minimal.on('message:text', (ctx) => ctx.reply('Fixed answer.'));

  // The usual grammY bot with state: a session read from and written to
  // MongoDB on every update (grammY's session middleware with a small
  // MongoDB adapter), then the same fixed answer.
  const sessions = mongoose.connection.collection<{ _id: string; value: unknown }>(
    'bench_sessions',
  );
  const withSession = new Bot<SessionContext>('1:bench', { botInfo });
  recordApi(withSession);
  withSession.use(
    session({
      initial: () => ({ steps: 0 }),
      storage: {
        read: async (key) =>
          (await sessions.findOne({ _id: key }))?.value as { steps: number } | undefined,
        write: async (key, value) => {
          await sessions.updateOne({ _id: key }, { $set: { value } }, { upsert: true });
        },
        delete: async (key) => {
          await sessions.deleteOne({ _id: key });
        },
      },
    }),
  );
  withSession.on('callback_query:data', async (ctx) => {
    ctx.session.steps += 1;
    await ctx.answerCallbackQuery();
    await ctx.reply('Fixed answer.');
  });
  withSession.on('message:text', async (ctx) => {
    ctx.session.steps += 1;
    await ctx.reply('Fixed answer.');
  });

  // One signed-up customer with a plan.
  const userId = 555_000_111;
  const { account } = await accountForIdentity(
    { channel: 'telegram', externalId: String(userId) },
    { clock },
  );
  await Account.updateOne(
    { _id: account.id },
    { $set: { email: 'bench@example.com', emailVerifiedAt: new Date() } },
  );
  await acceptTerms({ clock }, account.id);
  await activateFromPayment({
    accountId: account.id,
    planCode: 'personal',
    paymentRef: 'bench-ref',
    clock,
  });

  const rows: { name: string; atl: number[]; min: number[]; ses: number[] }[] = [
    { name: 'press "Plans" (callback)', atl: [], min: [], ses: [] },
    { name: 'type /usage (command)', atl: [], min: [], ses: [] },
  ];
  const workloads = [() => callback(userId, 'plans'), () => command(userId, '/usage')];
  // Warm-up: compile the paths.
  for (const make of workloads) {
    await time((u) => atlantic.handleUpdate(u), make);
    await time((u) => minimal.handleUpdate(u), make);
    await time((u) => withSession.handleUpdate(u), make);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, make] of workloads.entries()) {
      const row = rows[index];
      if (!row) continue;
      row.atl.push(...(await time((u) => atlantic.handleUpdate(u), make)));
      row.min.push(...(await time((u) => minimal.handleUpdate(u), make)));
      row.ses.push(...(await time((u) => withSession.handleUpdate(u), make)));
    }
  }
  write(`${STEPS} steps x ${ROUNDS} rounds per row, after a warm-up; milliseconds per step.\n`);
  write(
    '| step | Atlantic p50 | p99 | minimal bot p50 | p99 | bot + Mongo session p50 | p99 | vs minimal (target <= 2x) | vs session bot |',
  );
  write('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
  const ms = (xs: number[], q: number) => quantile(xs, q).toFixed(3);
  for (const row of rows) {
    const ratio = quantile(row.atl, 0.5) / quantile(row.min, 0.5);
    const sessionRatio = quantile(row.atl, 0.5) / quantile(row.ses, 0.5);
    write(
      `| ${row.name} | ${ms(row.atl, 0.5)} | ${ms(row.atl, 0.99)} | ${ms(row.min, 0.5)} | ${ms(row.min, 0.99)} | ${ms(row.ses, 0.5)} | ${ms(row.ses, 0.99)} | ${ratio.toFixed(1)}x: ${ratio <= 2 ? 'met' : 'NOT met'} | ${sessionRatio.toFixed(1)}x |`,
    );
  }
  await mongoose.disconnect();
  await engine.stop();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await measureBotSteps((line) => process.stdout.write(`${line}\n`));
}
