/** sid → partition. FNV-1a (32 bit) over the sid's UTF-16 code units: fast, stable everywhere. */
export function partitionOf(sid: string, partitionCount: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < sid.length; i++) {
    h ^= sid.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitionCount;
}

export const DEFAULT_PARTITIONS = 1024;
