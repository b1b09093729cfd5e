/** Errors in a filter expression, and how to show one to a person. */

/** A filter the user typed does not parse. `offset`/`length` give the bad span in the text. */
export class FilterError extends Error {
  override readonly name = 'FilterError';
  /** Index of the first character of the bad token (text.length when the filter ended early). */
  readonly offset: number;
  /** Length of the bad token; 0 when the problem is the end of the filter. */
  readonly length: number;

  constructor(message: string, offset: number, length: number) {
    super(message);
    this.offset = offset;
    this.length = length;
  }
}

/**
 * Renders the filter with a caret line under the bad span and the message after the carets:
 *
 *   host foo and tcp
 *        ^^^ expected an address after 'host', got 'foo'
 *
 * Line breaks in the filter are shown as spaces so the carets stay aligned, and tabs before the
 * span are repeated in the caret line for the same reason. Monospace output is assumed.
 */
export function formatFilterError(text: string, err: FilterError): string {
  const shown = text.replace(/[\r\n]/g, ' ');
  const offset = Math.max(0, Math.min(err.offset, shown.length));
  const length = Math.max(1, Math.min(err.length, shown.length - offset));
  const pad = shown.slice(0, offset).replace(/[^\t]/g, ' ');
  return `${shown}\n${pad}${'^'.repeat(length)} ${err.message}`;
}
