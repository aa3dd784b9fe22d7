/**
 * Connect: a location (the plan's), a protocol (allowed ones; the others
 * shown locked with the upgrade that unlocks them), then host, port,
 * username, password, a ready-to-paste URL and its QR code. The password is
 * only ever shown when it is made (it is stored hashed): at the first
 * Connect, and whenever the customer asks for a new one. Disconnect pauses
 * proxy access everywhere; New IP moves to fresh exits.
 */
import { randomBytes } from 'node:crypto';
import { entitlementsOf } from '../../../core/account-entitlements.js';
import type { Entitlements, Upgrade } from '../../../core/entitlements.js';
import { listLocations } from '../../../core/locations.js';
import {
  getProxyCredentials,
  issueProxyCredentials,
  requestNewExit,
  rotateProxySecret,
  setProxyAccess,
} from '../../../core/proxy-credentials.js';
import { chooseLocations, getCurrentSubscription } from '../../../core/subscriptions.js';
import type { Protocol } from '../../../models/plan.js';
import { renderQrPng } from '../../render/qr.js';
import type { Journey, Turn } from '../conversation.js';
import type { Menu } from '../types.js';

const PROTOCOL_NAME: Record<Protocol, string> = {
  socks5: 'SOCKS5',
  https: 'HTTPS (CONNECT)',
  http: 'HTTP',
};

/** The action that lifts a refusal, as a button. */
export function upgradeMenu(turn: Turn, upgrade: Upgrade | null): Menu {
  if (!upgrade) return turn.t.backToMenu;
  const action =
    upgrade.action === 'top_up'
      ? 'topup'
      : upgrade.action === 'pay' || upgrade.action === 'renew'
        ? 'billing'
        : upgrade.action === 'choose_location'
          ? 'connect'
          : upgrade.action === 'contact_support'
            ? 'help'
            : 'plans';
  return [[{ label: upgrade.text, action }], ...turn.t.backToMenu];
}

async function entitlements(turn: Turn): Promise<Entitlements> {
  return entitlementsOf(turn.account.id, {
    now: turn.deps.clock.now(),
    policy: turn.deps.proxy.policy,
  });
}

async function labelOf(code: string): Promise<string> {
  const location = (await listLocations()).find((l) => l.code === code);
  return location?.label ?? code.toUpperCase();
}

/** The customer's credentials, made now if they have none; `secret` only when just made. */
async function credentialsFor(
  turn: Turn,
): Promise<{ username: string; secret: string | null; firstTime: boolean; paused: boolean }> {
  const existing = await getProxyCredentials(turn.account.id);
  if (existing) {
    return {
      username: existing.username,
      secret: null,
      firstTime: false,
      paused: existing.accessPaused === true,
    };
  }
  const issued = await issueProxyCredentials(turn.account.id, {});
  return { username: issued.username, secret: issued.secret, firstTime: true, paused: false };
}

async function chooseLocation(turn: Turn, e: Entitlements): Promise<void> {
  if (e.locations.toChoose > 0) {
    const taken = new Set(e.locations.allowed);
    const options = (await listLocations()).filter((l) => !taken.has(l.code));
    turn.text(turn.t.chooseLocationToKeep(e.locations.toChoose + e.locations.allowed.length), [
      ...options.map((l) => [{ label: l.label, action: `connect:keep:${l.code}` }]),
      ...turn.t.backToMenu,
    ]);
    return;
  }
  if (e.locations.allowed.length === 1) {
    await chooseProtocol(turn, e, e.locations.allowed[0] ?? '');
    return;
  }
  const labels = await listLocations();
  turn.text(turn.t.chooseLocation, [
    ...e.locations.allowed.map((code) => [
      { label: labels.find((l) => l.code === code)?.label ?? code, action: `connect:loc:${code}` },
    ]),
    ...turn.t.backToMenu,
  ]);
}

async function chooseProtocol(turn: Turn, e: Entitlements, location: string): Promise<void> {
  const menu: Menu = e.protocols.allowed.map((protocol) => [
    { label: PROTOCOL_NAME[protocol], action: `connect:proto:${location}:${protocol}` },
  ]);
  for (const refused of e.protocols.refused) {
    menu.push([{ label: turn.t.lockedProtocol(PROTOCOL_NAME[refused.protocol]), action: 'plans' }]);
  }
  menu.push(...turn.t.backToMenu);
  const locked = e.protocols.refused.map((r) => r.message);
  const text = turn.t.chooseProtocol(await labelOf(location));
  turn.text(locked.length > 0 ? `${text}\n\n${turn.t.lockedExplained(locked)}` : text, menu);
}

async function showCredentials(
  turn: Turn,
  location: string,
  protocol: Protocol,
  sticky: boolean,
): Promise<void> {
  const { proxy } = turn.deps;
  const credentials = await credentialsFor(turn);
  if (credentials.paused) {
    await setProxyAccess(turn.account.id, 'connected', { clock: turn.deps.clock });
    turn.text(turn.t.reconnected);
  }
  const session = sticky ? `-session-${randomBytes(4).toString('hex')}` : '';
  const username = `${credentials.username}-country-${location}${session}`;
  const port = protocol === 'socks5' ? proxy.socksPort : proxy.httpPort;
  const scheme = protocol === 'socks5' ? 'socks5' : 'http';
  const url = credentials.secret
    ? `${scheme}://${username}:${credentials.secret}@${proxy.host}:${port}`
    : null;
  turn.state.data = { connect: { location, protocol } };
  turn.text(
    turn.t.credentials({
      protocol: PROTOCOL_NAME[protocol],
      host: proxy.host,
      port,
      username,
      password: credentials.secret,
      url,
      location: await labelOf(location),
      sticky,
    }),
    url ? undefined : turn.t.connectMenu,
  );
  if (url)
    turn.say({
      kind: 'image',
      png: await renderQrPng(url),
      caption: turn.t.qrCaption,
      // The menu goes on the last message: the guide, when there is one.
      ...(credentials.firstTime ? {} : { menu: turn.t.connectMenu }),
    });
  if (credentials.firstTime) {
    const test =
      protocol === 'socks5'
        ? `curl --socks5-hostname ${proxy.host}:${port} --proxy-user '${username}:PASSWORD' https://api.ipify.org`
        : `curl --proxy http://${proxy.host}:${port} --proxy-user '${username}:PASSWORD' https://api.ipify.org`;
    turn.text(turn.t.howToUse(test), turn.t.connectMenu);
  }
}

export const connectJourney: Journey = {
  actions: {
    async connect(turn) {
      const [sub, ...rest] = turn.args;
      const e = await entitlements(turn);
      if (e.planCode === null) {
        turn.text(turn.t.noPlan, turn.t.noPlanMenu);
        return;
      }
      if (!e.access.on) {
        turn.text(turn.t.accessOff(e.access.message), upgradeMenu(turn, e.access.upgrade));
        return;
      }
      switch (sub) {
        case 'keep': {
          const code = rest[0] ?? '';
          const subscription = await getCurrentSubscription(turn.account.id);
          if (!subscription) throw new Error('entitlements without a subscription');
          await chooseLocations(subscription._id, {
            locations: [...e.locations.allowed, code],
            clock: turn.deps.clock,
          });
          await chooseProtocol(turn, await entitlements(turn), code);
          return;
        }
        case 'loc':
          if (!e.locations.allowed.includes(rest[0] ?? '')) return chooseLocation(turn, e);
          return chooseProtocol(turn, e, rest[0] ?? '');
        case 'proto': {
          const [location = '', protocol = ''] = rest;
          if (!e.locations.allowed.includes(location)) return chooseLocation(turn, e);
          if (!(e.protocols.allowed as string[]).includes(protocol)) {
            return chooseProtocol(turn, e, location);
          }
          return showCredentials(turn, location, protocol as Protocol, false);
        }
        case 'sticky': {
          const last = turn.state.data.connect as
            { location?: string; protocol?: Protocol } | undefined;
          if (
            last?.location &&
            last.protocol &&
            e.locations.allowed.includes(last.location) &&
            e.protocols.allowed.includes(last.protocol)
          ) {
            if (!e.features.stickySessions) {
              turn.text(
                turn.t.refused('Sticky sessions are not part of your plan.'),
                turn.t.connectMenu,
              );
              return;
            }
            return showCredentials(turn, last.location, last.protocol, true);
          }
          return chooseLocation(turn, e);
        }
        default:
          return chooseLocation(turn, e);
      }
    },
    async disconnect(turn) {
      await setProxyAccess(turn.account.id, 'paused', { clock: turn.deps.clock });
      turn.text(turn.t.disconnected, [
        [{ label: '🔌 Connect', action: 'connect' }],
        ...turn.t.backToMenu,
      ]);
    },
    async newip(turn) {
      await requestNewExit(turn.account.id);
      turn.text(turn.t.newIp, turn.t.connectMenu);
    },
  },
};

/** A new proxy password (Security and Connect): the old one stops at once. */
export async function rotatePassword(turn: Turn): Promise<void> {
  const existing = await getProxyCredentials(turn.account.id);
  if (!existing) {
    turn.text(turn.t.noCredentialsYet, [[{ label: '🔌 Connect', action: 'connect' }]]);
    return;
  }
  const rotated = await rotateProxySecret(turn.account.id, { clock: turn.deps.clock });
  turn.text(turn.t.rotated(rotated.username, rotated.secret), turn.t.connectMenu);
}
