/** Splits filter text into tokens that remember where they came from, for error carets. */
import { FilterError } from './error.js';

export type TokenKind = 'word' | 'and' | 'or' | 'not' | 'lparen' | 'rparen' | 'end';

export interface Token {
  readonly kind: TokenKind;
  /** The text as typed (for messages); '' for the end token. */
  readonly text: string;
  readonly offset: number;
  readonly length: number;
}

/**
 * Longest filter accepted. Far beyond any filter a person types; it bounds the size of the
 * bpftrace program a filter can produce and the parser's work on hostile input.
 */
export const MAX_FILTER_LENGTH = 4096;

// A Map, not an object literal: a word like 'constructor' must not find Object.prototype.
const WORD_OPERATORS: ReadonlyMap<string, TokenKind> = new Map([['and', 'and'], ['or', 'or'], ['not', 'not']]);

/** Characters that end a word. Everything else non-blank belongs to one (addresses have : . /). */
const isBreak = (c: string): boolean => /\s/.test(c) || c === '(' || c === ')' || c === '&' || c === '|' || c === '!';

export function tokenize(text: string): Token[] {
  if (text.length > MAX_FILTER_LENGTH) {
    throw new FilterError(
      `filter is too long (${text.length} characters, at most ${MAX_FILTER_LENGTH})`,
      MAX_FILTER_LENGTH,
      text.length - MAX_FILTER_LENGTH,
    );
  }
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charAt(i);
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '(' || c === ')') {
      tokens.push({ kind: c === '(' ? 'lparen' : 'rparen', text: c, offset: i, length: 1 });
      i++;
      continue;
    }
    if (c === '&' || c === '|') {
      if (text.charAt(i + 1) !== c) {
        const word = c === '&' ? 'and' : 'or';
        throw new FilterError(`unexpected '${c}': write '${c}${c}' or '${word}'`, i, 1);
      }
      tokens.push({ kind: c === '&' ? 'and' : 'or', text: c + c, offset: i, length: 2 });
      i += 2;
      continue;
    }
    if (c === '!') {
      tokens.push({ kind: 'not', text: c, offset: i, length: 1 });
      i++;
      continue;
    }
    let j = i;
    while (j < text.length && !isBreak(text.charAt(j))) j++;
    const word = text.slice(i, j);
    tokens.push({ kind: WORD_OPERATORS.get(word.toLowerCase()) ?? 'word', text: word, offset: i, length: j - i });
    i = j;
  }
  tokens.push({ kind: 'end', text: '', offset: text.length, length: 0 });
  return tokens;
}
