/**
 * Bytes to and from clients, counted by this process over every wire (read by `/metrics`). Text is
 * counted by its length in UTF-16 units (its bytes when it is ASCII, as protocol frames mostly
 * are): exact byte counts would scan every frame.
 */
export const traffic = { in: 0, out: 0 };

export function sizeOf(f: string | Uint8Array | ArrayBuffer): number {
  return typeof f === 'string' ? f.length : f.byteLength;
}
