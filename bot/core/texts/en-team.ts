/** English for the team journey (bot/core/journeys/team.ts). */
export const teamTexts = {};
