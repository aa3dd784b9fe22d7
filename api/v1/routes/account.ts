/**
 * /api/v1/me: the account itself (who am I, email, linked chats, preferences,
 * deletion).
 */
import { z } from 'zod';
import { getAccountView } from '../../../core/accounts/index.js';
import { jsonRoute, type AnyRoute } from '../route.js';

export const accountView = z.object({
  id: z.string(),
  email: z.string().nullable(),
  emailVerified: z.boolean(),
  status: z.enum(['active', 'suspended', 'deleted']),
  roles: z.array(z.string()),
  termsAcceptedAt: z.date().nullable(),
  termsVersion: z.string().nullable(),
  identities: z.array(
    z.object({ channel: z.enum(['telegram', 'whatsapp']), externalId: z.string() }),
  ),
  createdAt: z.date(),
});

export const accountRoutes: AnyRoute[] = [
  jsonRoute({
    operationId: 'getMe',
    method: 'get',
    path: '/me',
    tag: 'Account',
    summary: 'The logged-in account',
    access: 'customer',
    verifiedEmail: false,
    response: accountView,
    async handler({ caller }) {
      return getAccountView(caller.accountId);
    },
  }),
];
