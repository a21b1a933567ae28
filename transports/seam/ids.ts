/**
 * Random ids (session ids, Engine.IO sids), base64url. `crypto.randomBytes` costs about 8 µs a
 * call here, which was a tenth of a session open; the bytes come from a pool refilled from the
 * same CSPRNG (`randomFillSync`) 4 KiB at a time, as Node's `randomUUID` does.
 */
import { randomFillSync } from 'node:crypto';

const pool = Buffer.allocUnsafe(4096);
let used = pool.length;

/** `bytes` random bytes (at most 256) as base64url */
export function randomId(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const s = pool.toString('base64url', used, used + bytes);
  // never hand the same bytes out twice
  pool.fill(0, used, used + bytes);
  used += bytes;
  return s;
}
