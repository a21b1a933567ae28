/**
 * msgpack as every layer uses it: one way to pack, and one way to unpack bytes someone else wrote
 * (a client, another node): plain values only. Neutral: `transports/` and `cluster/` both import
 * it, and it imports nothing of ours.
 *
 * Why a scan before msgpackr: msgpackr decodes more than plain msgpack. Its extensions include
 * structured-clone references (ext 0x69 "id", 0x70 "pointer"): a few hundred bytes can stand for a
 * value that is a DAG of fan-out^depth paths, which every later walk (validation, measuring,
 * re-encoding for other clients or for the bus) expands: a frame of about 650 bytes froze a node for
 * over a minute. Records, Sets, Errors, RegExps, typed arrays, bundled strings, BigInts and Dates
 * are extensions too, none of which a client needs (a node's Dates: see scanPlain's `fromNode`).
 * So the bytes are first read once, linearly and without recursion, and refused unless they hold
 * exactly one plain value; msgpackr then decodes what passed, in time linear in its length.
 * @see https://github.com/msgpack/msgpack/blob/master/spec.md
 */
import { Packr, Unpackr } from 'msgpackr';

/**
 * How everything here packs: plain maps (records/structures would make our bytes unreadable to
 * other msgpack libraries), each map header sized to the keys it has
 */
export const PACK_OPTIONS = { useRecords: false, variableMapSize: true } as const;

/** The one packer (packing is synchronous: one instance serves every caller) */
export const packr = new Packr(PACK_OPTIONS);

/**
 * Only for bytes that `scanPlain` accepted. `structuredClone: false` as well (msgpackr then throws
 * on a reference): should the scan ever let one through, it still does not decode. 64-bit integers
 * as numbers: the scan lets through only those that are exact as numbers.
 */
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false, int64AsType: 'number' });
/** The same for bytes of our own nodes (`fromNode`): a 64-bit integer past 2^53 comes as a BigInt */
const nodeUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false, int64AsType: 'auto' as 'number' });

/** The bytes are not one plain msgpack value; `message` says why (one of a few fixed texts: a log cause) */
export class MsgpackRefusedError extends Error {}

/** the deepest nesting a scan can follow (a caller's `maxDepth` above it is lowered to it) */
export const MAX_SCAN_DEPTH = 256;

// the open containers, outermost first: items still to read in each, and whether it is a map.
// Module-level: a scan allocates nothing (it never yields, so one set serves every call).
const leftAt = new Float64Array(MAX_SCAN_DEPTH);
const mapAt = new Uint8Array(MAX_SCAN_DEPTH);

const TRUNCATED = 'a length that runs past the end';
const TRAILING = 'bytes after the value';
const EXTENSION = 'an extension type';
const NEVER_USED = 'the never-used byte 0xc1';
const TOO_DEEP = 'nested too deep';
const KEY = 'a map key that is not a string, number, boolean or nil';
const INT64 = 'a 64-bit integer past 2^53';

/**
 * Whether `b` holds exactly one plain msgpack value: nil, booleans, integers (64-bit ones only
 * within ±(2^53−1), where a number is exact), floats, strings, binaries, arrays and maps whose keys
 * are strings, numbers, booleans or nil; at most `maxDepth` containers deep (a scalar is at depth
 * 0, `[1]` at 1). The one extension let through is fixext 1 of type 0 with data 0 (`d4 00 00`),
 * a constant: msgpackr and notepack.io (socket.io-msgpack-parser) write `undefined` so, and
 * socket.io-client sends it in every CONNECT. Every other extension (0xc7–0xc9, 0xd4–0xd8) and
 * 0xc1 are refused, as are declared lengths past the end and bytes after the value.
 *
 * `fromNode`: bytes of our own nodes (the bus), which carry what an app emitted as our packer wrote
 * it: also the timestamp extension (type −1 in its three sizes, not as a key: an app's Date) and
 * 64-bit integers past 2^53 (an app's BigInt, decoded as one: the gateway then refuses that one
 * entry, as it does in one process, instead of the whole envelope being lost). Both are
 * fixed-size scalars, nothing to expand; clients get no such pass (their dates travel as numbers
 * or strings, and a BigInt is no JSON value).
 *
 * Linear in `b.length` (each byte is looked at once at most, and a container's declared count is
 * checked against the bytes left before it is followed), no recursion, no allocation.
 * @returns null when plain, else why not
 */
export function scanPlain(b: Uint8Array, maxDepth: number, fromNode = false): string | null {
  const end = b.length;
  const deepest = Math.min(maxDepth, MAX_SCAN_DEPTH);
  let p = 0;
  let depth = 0;
  // items left in the innermost open container (at the top: the one value); in a map, keys and
  // values alternate and `left` counts both down from 2 × entries: it is even before a key
  let left = 1;
  let inMap = false;
  for (;;) {
    if (left === 0) {
      if (depth === 0) return p === end ? null : TRAILING;
      depth--;
      left = leftAt[depth]!;
      inMap = mapAt[depth] === 1;
      continue;
    }
    left--;
    if (p >= end) return TRUNCATED;
    const t = b[p++]!;
    // positive and negative fixint, fixstr: the most common bytes first (fine as keys too)
    if (t < 0x80 || t >= 0xe0) continue;
    if (t >= 0xa0 && t < 0xc0) {
      p += t & 0x1f;
      if (p > end) return TRUNCATED;
      continue;
    }
    // this item is a map key (`left`, counted down past it, is odd then)
    const key = inMap && (left & 1) === 1;
    let items: number;
    let map: boolean;
    if (t < 0x90) {
      items = t & 0x0f;
      map = true;
    } else if (t < 0xa0) {
      items = t & 0x0f;
      map = false;
    } else {
      let len: number;
      switch (t) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          continue;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          p += 1;
          if (p > end) return TRUNCATED;
          continue;
        case 0xcd:
        case 0xd1:
          p += 2;
          if (p > end) return TRUNCATED;
          continue;
        case 0xca: // float 32
        case 0xce:
        case 0xd2:
          p += 4;
          if (p > end) return TRUNCATED;
          continue;
        case 0xcb: // float 64
          p += 8;
          if (p > end) return TRUNCATED;
          continue;
        case 0xcf: // uint 64: below 2^53 when its top 11 bits are 0
          if (p + 8 > end) return TRUNCATED;
          if (!fromNode && (b[p] !== 0 || b[p + 1]! > 0x1f)) return INT64;
          p += 8;
          continue;
        case 0xd3: // int 64: 0 ≤ v < 2^53 as above; −2^53 < v < 0 when the top 11 bits are 1 and v is not −2^53 itself
          if (p + 8 > end) return TRUNCATED;
          if (fromNode) {
            // any 64-bit integer
          } else if (b[p]! < 0x80) {
            if (b[p] !== 0 || b[p + 1]! > 0x1f) return INT64;
          } else if (
            b[p] !== 0xff ||
            b[p + 1]! < 0xe0 ||
            (b[p + 1] === 0xe0 && (b[p + 2]! | b[p + 3]! | b[p + 4]! | b[p + 5]! | b[p + 6]! | b[p + 7]!) === 0)
          ) {
            return INT64;
          }
          p += 8;
          continue;
        case 0xd9: // str 8
        case 0xc4: // bin 8
          if (p + 1 > end) return TRUNCATED;
          if (key && t === 0xc4) return KEY;
          len = b[p]!;
          p += 1 + len;
          if (p > end) return TRUNCATED;
          continue;
        case 0xda:
        case 0xc5:
          if (p + 2 > end) return TRUNCATED;
          if (key && t === 0xc5) return KEY;
          len = (b[p]! << 8) | b[p + 1]!;
          p += 2 + len;
          if (p > end) return TRUNCATED;
          continue;
        case 0xdb:
        case 0xc6:
          if (p + 4 > end) return TRUNCATED;
          if (key && t === 0xc6) return KEY;
          len = b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
          p += 4 + len;
          if (p > end) return TRUNCATED;
          continue;
        case 0xdc: // array 16
        case 0xde: // map 16
          if (p + 2 > end) return TRUNCATED;
          items = (b[p]! << 8) | b[p + 1]!;
          p += 2;
          map = t === 0xde;
          break;
        case 0xdd:
        case 0xdf:
          if (p + 4 > end) return TRUNCATED;
          items = b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
          p += 4;
          map = t === 0xdf;
          break;
        case 0xd4: // fixext 1: only `undefined` (type 0, data 0), and not as a key
          if (p + 2 > end || b[p] !== 0 || b[p + 1] !== 0) return EXTENSION;
          if (key) return KEY;
          p += 2;
          continue;
        case 0xd6: // fixext 4, 8 and ext 8 of 12 bytes: from a node, type −1 (a Date) passes
          if (!fromNode || key || p + 5 > end || b[p] !== 0xff) return EXTENSION;
          p += 5;
          continue;
        case 0xd7:
          if (!fromNode || key || p + 9 > end || b[p] !== 0xff) return EXTENSION;
          p += 9;
          continue;
        case 0xc7:
          if (!fromNode || key || p + 14 > end || b[p] !== 12 || b[p + 1] !== 0xff) return EXTENSION;
          p += 14;
          continue;
        case 0xc1:
          return NEVER_USED;
        default: // ext 16/32 (0xc8, 0xc9), fixext 2 and 16 (0xd5, 0xd8)
          return EXTENSION;
      }
    }
    // a container
    if (key) return KEY;
    if (depth >= deepest) return TOO_DEEP;
    // each item takes at least one byte: a count the bytes left cannot hold is refused now
    if (map) items *= 2;
    if (items > end - p) return TRUNCATED;
    if (items === 0) continue;
    leftAt[depth] = left;
    mapAt[depth] = inMap ? 1 : 0;
    depth++;
    left = items;
    inMap = map;
  }
}

/**
 * The plain value in `b` (see scanPlain), decoded: maps as objects (a `__proto__` key becomes
 * `__proto_`), binaries as views of `b` (not copies), 64-bit integers as numbers, `d4 00 00` as
 * undefined; from a node, timestamps as Dates and 64-bit integers past 2^53 as BigInts.
 * @throws MsgpackRefusedError when `b` is not exactly one plain value within `maxDepth`
 */
export function unpackPlain(b: Uint8Array, maxDepth: number, fromNode = false): unknown {
  const why = scanPlain(b, maxDepth, fromNode);
  if (why !== null) throw new MsgpackRefusedError(why);
  return (fromNode ? nodeUnpackr : unpackr).unpack(b);
}
