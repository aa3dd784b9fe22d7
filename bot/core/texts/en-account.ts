/** English for the account journey (bot/core/journeys/account.ts). */

const channelName = (channel: string) =>
  channel === 'telegram' ? 'Telegram' : channel === 'whatsapp' ? 'WhatsApp' : 'Email';

export const accountTexts = {
  channelName,

  // --- the overview ----------------------------------------------------------
  overview: (a: { email: string; chats: string }) =>
    `Your account\nEmail: ${a.email}\nChats: ${a.chats}`,
  noEmail: 'none yet',
  chatLinked: (channel: string) => `${channelName(channel)} ✅`,
  chatNotLinked: (channel: string) => `${channelName(channel)}: not linked`,
  changeEmailButton: '✉️ Change email',
  linkOtherButton: (channel: string) => `🔗 Link ${channelName(channel)}`,
  enterCodeButton: '🔢 Enter a link code',
  notificationsButton: '🔔 Notifications',
  teamButton: '👥 Team',
  apiPasswordButton: '🔑 Set a password for the API',
  deleteButton: '🗑 Delete account',
  backToAccount: '⬅️ Account',

  // --- email change ----------------------------------------------------------
  askNewEmail: (current: string) =>
    `Your email is ${current}. Type the new address; I will send a 6-digit code there. Your current address stays until the new one is confirmed. (/cancel to stop)`,
  sameEmail: (email: string) =>
    `${email} is already your email address. Type another one, or /cancel.`,
  codeSent: (email: string, minutes: number) =>
    `I sent a 6-digit code to ${email}. Type it here (it expires in ${minutes} minutes).`,
  emailChanged: (email: string) =>
    `Email changed ✅ Receipts and notices now go to ${email}. We told your old address too.`,
  codeDead: 'Ask for a new code with Change email.',

  // --- linking the other chat -----------------------------------------------------
  linkCode: (c: { code: string; minutes: number; other: string; how: string }) =>
    `Your link code: ${c.code}\n\nIt works once, for ${c.minutes} minutes. To use this account on ${c.other} too, ${c.how}\n\nDon't share this code: whoever sends it gets into your account.`,
  linkHowOn: (other: string, code: string) =>
    other === 'whatsapp'
      ? `send LINK ${code} to our WhatsApp number.`
      : `send LINK ${code} to our Telegram bot.`,
  askLinkCode:
    'Type the 8-character link code you got in your other chat (Account → Link), e.g. ABCD-EFGH. (/cancel to stop)',
  linked: (email: string) =>
    `Linked ✅ This chat now uses your account${email ? ` (${email})` : ''}. Everything you have is here.`,

  // --- a password for the REST API ------------------------------------------------
  apiPasswordLink: (l: { url: string; email: string; minutes: number }) =>
    `Open this link to choose a password for the Atlantic API (your login is ${l.email}):\n${l.url}\n\nIt works once, for ${l.minutes} minutes. You type the password on that page, not here. Don't share this link: whoever opens it can set your password.`,
  apiPasswordNeedsEmail:
    'Verify your email address first (Change email): it becomes your login for the API.',
  apiPasswordUnavailable: 'Setting an API password is not available here yet.',

  // --- notifications ---------------------------------------------------------------
  notificationsTitle: 'Notifications: tap one to switch it on or off.',
  channelsTitle: 'Where we send them:',
  channelLine: (name: string, on: boolean) => `• ${name}: ${on ? 'on' : 'off'}`,
  eventsTitle: 'What we send:',
  eventLine: (name: string, on: boolean) => `• ${name}: ${on ? 'on' : 'off'}`,
  mandatoryTitle: 'Always sent (about your money or your plan ending):',
  mandatoryLine: (name: string) => `• ${name}: always on`,
  allChannelsOff:
    'With every channel off, the always-sent messages still reach you everywhere we can.',
  toggleLabel: (name: string, on: boolean) => `${on ? '🔔' : '🔕'} ${name}`,
  eventNames: {
    welcome: 'Welcome and getting started',
    trial: 'Trial started and ending',
    usage: 'Data use (50, 80, 95 and 100 %)',
    wallet: 'Wallet low or empty',
    payment_confirmed: 'Payments received, with receipts',
    payment_failed: 'Payments that failed',
    deposit_refunded: 'Trial deposits returned',
    refund_processed: 'Refunds',
    renewal_due: 'Renewal reminders',
    cancelled: 'Plan cancelled or ended',
    broadcast: 'News and announcements from Atlantic',
    weekly_summary: 'Weekly usage and billing summary',
    usage_forecast: 'Warnings when your data will run out early',
    wallet_forecast: 'Warnings when your wallet will run out soon',
  } as Record<string, string>,

  // --- deletion -----------------------------------------------------------------------
  deleteIntro: 'Delete your account? This cannot be undone. Here is exactly what happens.',
  deleteErased: 'Erased or ended:',
  deleteKept: 'Kept (the law requires financial records, and they back what you were billed):',
  deleteWallet: (balance: string) =>
    `You have ${balance} in your wallet. It is not paid out automatically: ask support before you delete.`,
  deleteConfirmButton: '🗑 Yes, delete my account',
  deleteKeepButton: 'Keep my account',
  deleted:
    'Your account is deleted. Your proxy password no longer works, and this chat is no longer linked to anything. Thank you for using Atlantic; send /start if you ever want to begin again.',
};
