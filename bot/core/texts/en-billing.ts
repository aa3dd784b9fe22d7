/** English for the billing journey (bot/core/journeys/billing.ts). */
export const billingTexts = {};
