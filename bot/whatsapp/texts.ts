/**
 * The few sentences only the WhatsApp adapter says (the conversation's own
 * texts are in bot/core/texts/). Kept here while bot/core/texts has no
 * per-channel section; they move there with the next language.
 */
export const whatsappTexts = {
  /** The last line of every numbered menu: "0" always goes to the main menu (bot/core/conversation.ts). */
  menuLine: '0. Menu',
  /** A photo, voice note, sticker, location, ... */
  textOnly: 'I can only read text messages. Type what you need, or send 0 for the menu.',
  /** The label in front of a link's URL when the core gave none. */
  openLink: 'Open',
};
