export * from './account.js';
export * from './channel-identity.js';
