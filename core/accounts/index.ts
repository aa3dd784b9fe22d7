/**
 * Accounts: who a customer is across chats (and later the REST API). A chat
 * identity finds or creates its account; the account proves an email with a
 * mailed code, accepts the terms, links its other chat with a one-time code,
 * and can be deleted, keeping only the financial records.
 *
 * Files: view.ts (shapes and shared reads), identities.ts, email.ts, terms.ts,
 * link-codes.ts, deletion.ts; codes.ts and rate-limit.ts are the machinery.
 */
export {
  getAccountView,
  type AccountView,
  type AccountsContext,
  type ChatIdentityInput,
} from './view.js';
export { accountForIdentity, accountForKnownIdentity } from './identities.js';
export {
  EMAIL_CODE_MAX_ATTEMPTS,
  EMAIL_CODE_SEND_LIMITS,
  EMAIL_CODE_TTL_MS,
  confirmEmailCode,
  normaliseEmail,
  requestEmailCode,
} from './email.js';
export { TERMS_VERSION, acceptTerms, hasAcceptedCurrentTerms } from './terms.js';
export {
  LINK_ATTEMPT_LIMITS,
  LINK_CODE_TTL_MS,
  createLinkCode,
  redeemLinkCode,
} from './link-codes.js';
export {
  ACCOUNT_DELETION_POLICY,
  deleteAccount,
  describeAccountDeletion,
  type DeleteAccountContext,
  type DeletionItem,
  type ErasedKey,
  type KeptKey,
} from './deletion.js';
export type { RateLimitRule } from './rate-limit.js';
export {
  REFRESH_IDLE_MS,
  SESSION_MAX_MS,
  endAllLoginSessions,
  endLoginSession,
  isSessionLive,
  listLoginSessions,
  rotateRefreshToken,
  startLoginSession,
  type IssuedRefreshToken,
  type LoginSessionView,
} from './login-sessions.js';
export {
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  assertStrongPassword,
  changePassword,
  checkPassword,
  hashPassword,
  registerWithPassword,
  verifyPassword,
  weakPassword,
  type PasswordContext,
  type WeakPasswordReason,
} from './passwords.js';
export {
  EMAIL_LINK_TTL_MS,
  sendVerificationEmail,
  verifyEmailByLink,
  type AuthLinkContext,
  type LinkRefusal,
} from './auth-links.js';
export {
  PASSWORD_LINK_TTL_MS,
  createPasswordLink,
  inspectPasswordLink,
  requestPasswordReset,
  resetPasswordWithLink,
} from './password-reset.js';
