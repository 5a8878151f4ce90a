/** Longest single value printed in a table; a condition message is the longest expected. */
export const MAX_CELL = 4096;

/**
 * A value from the cluster as it may reach a terminal: control characters (C0 and C1, so
 * escape sequences too) shown as `\u…` escapes, and cut at MAX_CELL characters.
 */
export function terminalSafe(text: string): string {
  const cut = text.length > MAX_CELL ? `${text.slice(0, MAX_CELL)}…` : text;
  let safe = "";
  for (const character of cut) {
    const code = character.codePointAt(0)!;
    safe +=
      code < 0x20 || (code >= 0x7f && code <= 0x9f)
        ? `\\u${code.toString(16).padStart(4, "0")}`
        : character;
  }
  return safe;
}
