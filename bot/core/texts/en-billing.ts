/** English for the billing journey (bot/core/journeys/billing.ts). */

export const billingTexts = {
  // --- the overview ----------------------------------------------------------
  noPlan: "You don't have a plan running.",
  pending: (plan: string) =>
    `Your ${plan} plan is waiting for its payment. Pay with the link I sent, or choose again in Plans.`,
  active: (plan: string) => `Plan: ${plan} (active).`,
  renews: (day: string, price: string) =>
    `Renews on ${day} for ${price}, charged to your saved card (or a payment link if it cannot be charged).`,
  endsAtPeriodEnd: (day: string) =>
    `Cancelled: it keeps working until ${day}, then stops. You can change your mind until then.`,
  scheduledChange: (plan: string, day: string, price: string) =>
    `On ${day} it moves to ${plan}, at ${price} a period.`,
  pastDue: (plan: string, graceDay: string) =>
    `Plan: ${plan}. The renewal payment did not go through; it keeps working until ${graceDay} while we try again.`,
  payg: (rate: string) => `Plan: pay as you go, ${rate}, paid from your wallet.`,
  walletLine: (balance: string) => `Wallet: ${balance}.`,
  teamMember: (owner: string) =>
    `You use the plan of ${owner}'s team: the team owner pays, there is nothing to pay here.`,
  trialRunning: (day: string) => `Plan: trial, until ${day}.`,
  depositHeld: (amount: string, back: string) =>
    `Deposit: ${amount}, held until the trial ends, then returned ${back}.`,
  depositBackTo: (toWallet: boolean) =>
    toWallet ? 'to your wallet' : 'to your card (it can take a few working days to show)',
  depositEnded: (amount: string) => `Your trial has ended. Deposit: ${amount}.`,
  depositRefund: (r: { amount: string; to: string; state: string }) =>
    `• ${r.amount} ${r.to}: ${r.state}`,
  depositRefundTo: (method: string) => (method === 'wallet' ? 'to your wallet' : 'to your card'),
  depositRefundState: (status: string, day: string) => {
    switch (status) {
      case 'processed':
        return `returned${day ? ` on ${day}` : ''}`;
      case 'failed':
      case 'needs-attention':
        return 'delayed at the bank; our team is on it and will be in touch';
      case 'refused':
        return 'not sent: it had already been refunded';
      default:
        return 'on its way';
    }
  },
  depositNotYet: 'being returned now.',

  // --- buttons -----------------------------------------------------------------
  changePlanButton: '🔁 Change plan',
  cancelPlanButton: '✖️ Cancel plan',
  stopPaygButton: '✖️ Stop pay as you go',
  undoCancelButton: '↩️ Keep my plan',
  extraDataButton: (gb: number) => `➕ Buy ${gb} GB extra data`,
  walletButton: '👛 Wallet',
  invoicesButton: '🧾 Invoices',
  teamButton: '👥 Team',
  plansButton: '🛒 See plans',
  backToBilling: '⬅️ Billing',
  confirmButton: '✅ Confirm',
  notNowButton: 'Not now',

  // --- changing plan -----------------------------------------------------------
  chooseTarget: (current: string) => `You are on ${current}. Move to which plan?`,
  targetLabel: (name: string, price: string) => `${name}: ${price}`,
  noTargets: 'There is no other plan to move to right now.',
  quoteFooter: (minutes: number) =>
    `Tap Confirm within ${minutes} minutes to go ahead; nothing changes until you do.`,
  changeApplied: (plan: string, credit: string) =>
    `Done: you are on ${plan} now.${credit ? ` ${credit} of unused plan went to your wallet.` : ''}`,
  changeScheduled: (plan: string, day: string) =>
    `Done: your plan moves to ${plan} on ${day}. Until then nothing changes.`,
  changePayLink: (amount: string) =>
    `Your saved card could not be charged without you. Pay ${amount} with the button and the plan changes as soon as the payment arrives.`,
  changeProcessing:
    'The payment is being confirmed by the bank. I will tell you here as soon as it is through; do not pay again.',
  changeUseCheckout: (plan: string) =>
    `${plan} starts a fresh period, so it is bought like a new plan:`,

  // --- cancelling ----------------------------------------------------------------
  cancelWhen: (day: string) =>
    `Cancel your plan at the end of the period (it keeps working until ${day}), or now?`,
  cancelAtEndButton: (day: string) => `At the end of the period (${day})`,
  cancelNowButton: 'Now',
  cancelledAtEnd: (day: string) =>
    `Done: your plan stops on ${day} and will not renew. Changed your mind? Tap Keep my plan.`,
  cancelledNow: 'Done: your plan has ended.',
  refundedToWallet: (amount: string, balance: string) =>
    `${amount} went to your wallet (balance ${balance}).`,
  refundedToCard: (amount: string) =>
    `${amount} is on its way back to your card; it can take a few working days to show.`,
  refundedSplit: (card: string, wallet: string) =>
    `${card} is on its way back to your card (a few working days) and ${wallet} went to your wallet.`,
  undone: (day: string) => `Your plan continues: it renews on ${day}.`,

  // --- extra data ------------------------------------------------------------------
  extraDataOffer: (gb: number, price: string) =>
    `Extra data: ${gb} GB for ${price}, added to this period's allowance. Charged to your saved card (or a payment link if it cannot be charged).`,
  extraDataAdded: (gb: number) => `Done: ${gb} GB were added to this period's data.`,
  extraDataToWallet: (amount: string) =>
    `Paid, but the period it was for has just ended, so ${amount} went to your wallet instead.`,
  extraDataWhat: (gb: number) => `${gb} GB extra data`,

  // --- wallet ------------------------------------------------------------------------
  wallet: (balance: string) => `Wallet balance: ${balance}.`,
  ledgerTitle: 'Latest movements:',
  ledgerLine: (l: { day: string; amount: string; description: string }) =>
    `• ${l.day}: ${l.amount}, ${l.description}`,
  ledgerEmpty: 'No movements yet.',
  autoTopUpOn: (threshold: string, amount: string) =>
    `Auto top-up: on. When the balance falls below ${threshold}, your saved card is charged ${amount}.`,
  autoTopUpOff: 'Auto top-up: off.',
  topUpButton: '➕ Top up',
  autoTopUpButton: (on: boolean) => (on ? '⚙️ Auto top-up: change' : '⚙️ Auto top-up: turn on'),

  // --- auto top-up ---------------------------------------------------------------
  autoChooseThreshold:
    'Auto top-up charges your saved card (the one you last paid with) when your wallet runs low. Top up when the balance falls below:',
  autoChooseAmount: (threshold: string) => `When the balance falls below ${threshold}, add:`,
  autoConfirm: (threshold: string, amount: string) =>
    `Turn on auto top-up? When your wallet falls below ${threshold}, we charge your saved card ${amount}, without asking each time. You can turn it off here at any time.`,
  autoTurnOffButton: '⏹ Turn auto top-up off',
  autoTurnOnButton: '✅ Turn it on',
  autoIsOn: (threshold: string, amount: string) =>
    `Auto top-up is on: below ${threshold}, we add ${amount} from your saved card.`,
  autoIsOff: 'Auto top-up is off. Top up by hand when you need to.',

  // --- invoices --------------------------------------------------------------------
  invoicesTitle: 'Your latest invoices: tap one to get its PDF.',
  invoicesNone: 'You have no invoices yet. Each payment gets one.',
  invoiceLabel: (i: { number: string; day: string; total: string; creditNote: boolean }) =>
    `${i.creditNote ? 'Credit note ' : ''}${i.number} · ${i.day} · ${i.total}`,
  invoiceCaption: (number: string, creditNote: boolean) =>
    `${creditNote ? 'Credit note' : 'Invoice'} ${number}`,
  invoiceMissing: 'I cannot find that invoice. Here are your latest ones:',
};
