/**
 * Every sentence the bots say, one module per language. `en` is the
 * reference: another language is an object of the same type (the compiler
 * lists what it is missing), registered below.
 */
import { en } from './en.js';

export type Texts = typeof en;

const languages: Readonly<Record<string, Texts>> = { en };

export const LANGUAGES = Object.keys(languages);

/** The texts of `language`, English when it has none. */
export function textsFor(language: string): Texts {
  return languages[language] ?? en;
}
