/**
 * The conversation core with every journey: what the Telegram and WhatsApp
 * adapters talk to.
 */
import { Conversation, type ConversationDeps } from './conversation.js';
import { accountJourney } from './journeys/account.js';
import { adminJourney } from './journeys/admin.js';
import { billingJourney } from './journeys/billing.js';
import { connectJourney } from './journeys/connect.js';
import { shopJourney } from './journeys/shop.js';
import { startJourney } from './journeys/start.js';
import { teamJourney } from './journeys/team.js';
import { usageJourney } from './journeys/usage.js';

export { COMMANDS, Conversation, type ConversationDeps } from './conversation.js';
export type { ChatIdentity, Inbound, Menu, MenuItem, Outbound, Reply } from './types.js';

export function createConversation(deps: ConversationDeps): Conversation {
  return new Conversation(deps, [
    startJourney,
    shopJourney,
    connectJourney,
    usageJourney,
    billingJourney,
    accountJourney,
    teamJourney,
    adminJourney,
  ]);
}
