/**
 * Admin operations, for every front (the bots' admin commands, the REST
 * API's admin routes): each takes an AdminContext (who acts, through which
 * channel, the clock, the configured admins), checks admin rights itself and
 * leaves an audit entry (core/audit.ts), refusals included.
 *
 * Files: context.ts (who is an admin, auditing), users.ts (/user), stats.ts,
 * grants.ts (data, days), suspension.ts, payments.ts (lists, refunds),
 * locations.ts (locations, upstreams), plans.ts, settings.ts, broadcast.ts,
 * admins.ts.
 */
export {
  isAdmin,
  isConfiguredIdentity,
  requireAdmin,
  type AdminActor,
  type AdminContext,
  type CheckedAdmin,
  type ConfiguredAdmins,
} from './context.js';
export {
  findUser,
  lookupAccount,
  resolveAccountId,
  type AccountSummary,
  type NotificationLine,
  type PaymentLine,
  type UserReport,
} from './users.js';
export { getStats, type AdminStats, type MoneyWindow } from './stats.js';
export {
  MAX_EXTEND_DAYS,
  MAX_GRANT_BYTES,
  extendPlan,
  grantData,
  type ExtendPlanOutcome,
  type GrantDataOutcome,
} from './grants.js';
export { suspendAccount, unsuspendAccount, type SuspensionOutcome } from './suspension.js';
export {
  describePayment,
  listPayments,
  paymentFilters,
  refundPayment,
  type AdminPaymentLine,
  type AdminRefundInput,
  type PaymentFilter,
} from './payments.js';
export {
  addLocationAsAdmin,
  addUpstream,
  listLocationsForAdmin,
  markUpstreamHealthy,
  removeLocationAsAdmin,
  removeUpstream,
  type AdminLocationView,
  type UpstreamView,
} from './locations.js';
export { editPlan, listPlansForAdmin, type PlanEdit } from './plans.js';
export {
  getSettingsForAdmin,
  settingChangeFromText,
  settingPaths,
  settingValue,
  updateSettingsAsAdmin,
} from './settings.js';
export {
  BROADCAST_LIMITS,
  MAX_BROADCAST_LENGTH,
  countBroadcast,
  parseSegment,
  sendBroadcast,
  type BroadcastOutcome,
  type BroadcastSegment,
} from './broadcast.js';
export { addAdmin, adminChatIds, listAdmins, removeAdmin, type AdminListEntry } from './admins.js';
