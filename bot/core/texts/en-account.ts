/** English for the account journey (bot/core/journeys/account.ts). */
export const accountTexts = {};
