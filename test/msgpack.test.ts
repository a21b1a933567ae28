/** lib/msgpack.ts on its own: which bytes the plain-only scan accepts, which it refuses and why. */
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { Packr, Unpackr } from 'msgpackr';
import { encode as msgpackEncode } from '@msgpack/msgpack';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';
import { MessageType, type InvocationMessage } from '@microsoft/signalr';
import sioMsgpack from 'socket.io-msgpack-parser';
import { MAX_SCAN_DEPTH, MsgpackRefusedError, packr, scanPlain, unpackPlain } from '../lib/msgpack.ts';
import { nativeEvent, referenceDag } from './msgpack-dag.ts';

// notepack.io (socket.io-msgpack-parser's encoder) has no types
const notepack = createRequire(import.meta.url)('notepack.io') as { encode(v: unknown): Buffer };

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** a decoder with msgpackr's defaults on, references included: what the scan must agree with on plain values */
const loose = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const D = 40;

const EXTENSION = 'an extension type';
const TRUNCATED = 'a length that runs past the end';
const INT64 = 'a 64-bit integer past 2^53';
const KEY = 'a map key that is not a string, number, boolean or nil';

describe('scanPlain accepts plain msgpack', () => {
  it('what our own packer writes for every kind of frame and envelope, decoded as msgpackr would', () => {
    const values: unknown[] = [
      { type: 'event', event: 'echo', args: ['a', 1, { b: [2, 2.5, null, true, false] }], ack: 3 },
      { type: 'reply', seq: 300, ack: 'k', args: [new Uint8Array([1, 2, 3]), 'z'] },
      { type: 'open', sid: 'abc', token: 'n.1.x', pingMs: 25_000, last: 0, recovered: true },
      [1, {}, '1', 'echo', [new Uint8Array(300), 'x'.repeat(70_000)], []],
      { type: 2, nsp: '/', data: ['echo', { deep: [[[['x']]]] }], id: 7 },
      {
        t: '*',
        e: [
          { t: 'emit', sid: 's', event: 'e', raw: '[1]', n: 1, o: 2 },
          { t: 'emit', sid: 's', event: 'e', args: [-1, -200, -70_000, -(2 ** 40), 2 ** 40, 1e300, Number.MAX_SAFE_INTEGER] },
        ],
      },
      { sparse: undefined, list: [undefined, 1] },
      Array.from({ length: 300 }, (_, i) => i),
      Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])),
      'é'.repeat(40_000),
      new Uint8Array(70_000),
    ];
    for (const v of values) {
      const b = packr.pack(v);
      expect(scanPlain(b, D)).toBeNull();
      expect(unpackPlain(b, D)).toEqual(loose.unpack(b));
    }
    // `undefined` keeps its meaning: msgpackr and notepack.io write it as fixext 1, type 0, data 0
    expect(unpackPlain(hex('92 d40000 01'), D)).toEqual([undefined, 1]);
  });

  it('what @msgpack/msgpack writes (the SignalR MessagePack client), and the SignalR client itself', () => {
    const values: unknown[] = [
      [1, {}, '1', 'Echo', [new Uint8Array([1, 2]), 'x', 2 ** 40, -(2 ** 40), 1.5, null], []],
      { nested: { a: [1, [2, [3]]] }, n: Number.MAX_SAFE_INTEGER, m: Number.MIN_SAFE_INTEGER },
    ];
    for (const v of values) {
      const b = msgpackEncode(v);
      expect(scanPlain(b, D)).toBeNull();
      expect(unpackPlain(b, D)).toEqual(loose.unpack(b));
    }
    const inv: InvocationMessage = {
      type: MessageType.Invocation,
      invocationId: '1',
      target: 'Echo',
      arguments: ['x', 2 ** 40, new Uint8Array([9]), { a: [1] }],
      streamIds: [],
      headers: {},
    };
    const framed = new Uint8Array(new MessagePackHubProtocol().writeMessage(inv));
    const body = framed.subarray(1); // a one-byte VarInt length
    expect(framed[0]).toBe(body.length);
    expect(scanPlain(body, D)).toBeNull();
    expect((unpackPlain(body, D) as unknown[])[4]).toEqual(['x', 2 ** 40, new Uint8Array([9]), { a: [1] }]);
  });

  it('what notepack.io writes (socket.io-msgpack-parser), its 64-bit integers as exact numbers and undefined as undefined', () => {
    const [connect] = new sioMsgpack.Encoder().encode({ type: 0, nsp: '/', data: undefined }) as unknown as Buffer[];
    expect(scanPlain(connect!, D)).toBeNull();
    expect(unpackPlain(connect!, D)).toEqual({ type: 0, nsp: '/', data: undefined });
    const [event] = new sioMsgpack.Encoder().encode({
      type: 2,
      nsp: '/',
      data: ['echo', { a: 1 }, Buffer.from([7]), 2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER],
      id: 3,
    }) as unknown as Buffer[];
    expect(event!.includes(0xcf) && event!.includes(0xd3)).toBe(true); // notepack writes 64-bit integers
    expect(unpackPlain(event!, D)).toEqual({
      type: 2,
      nsp: '/',
      data: ['echo', { a: 1 }, Buffer.from([7]), 2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER],
      id: 3,
    });
  });

  it('every width of every plain type, and scalar map keys (string, integer, float, nil, boolean)', () => {
    const cases: Array<[string, unknown]> = [
      ['c0', null],
      ['c2', false],
      ['c3', true],
      ['7f', 127],
      ['e0', -32],
      ['cc ff', 255],
      ['cd ffff', 65535],
      ['ce ffffffff', 2 ** 32 - 1],
      ['cf 001fffff ffffffff', Number.MAX_SAFE_INTEGER],
      ['d0 80', -128],
      ['d1 8000', -32768],
      ['d2 80000000', -(2 ** 31)],
      ['d3 ffe00000 00000001', Number.MIN_SAFE_INTEGER],
      ['d3 001fffff ffffffff', Number.MAX_SAFE_INTEGER],
      ['ca 3fc00000', 1.5],
      ['cb 3ff8000000000000', 1.5],
      ['a161', 'a'],
      ['d9 01 61', 'a'],
      ['da 0001 61', 'a'],
      ['db 00000001 61', 'a'],
      ['c4 01 09', Buffer.from([9])],
      ['c5 0001 09', Buffer.from([9])],
      ['c6 00000001 09', Buffer.from([9])],
      ['90', []],
      ['dc 0001 01', [1]],
      ['dd 00000001 01', [1]],
      ['80', {}],
      ['de 0001 a161 01', { a: 1 }],
      ['df 00000001 a161 01', { a: 1 }],
      ['85 a161 01 07 02 cb3ff8000000000000 03 c0 04 c3 05', { a: 1, 7: 2, 1.5: 3, null: 4, true: 5 }],
    ];
    for (const [h, v] of cases) {
      expect(scanPlain(hex(h), D), h).toBeNull();
      expect(unpackPlain(hex(h), D), h).toEqual(v);
    }
  });
});

describe('scanPlain refuses', () => {
  it("msgpackr's shared references (the issue 16 frame), at once", () => {
    const frame = nativeEvent(referenceDag(10));
    expect(scanPlain(frame, D)).toBe(EXTENSION);
    expect(() => unpackPlain(frame, D)).toThrow(MsgpackRefusedError);
    expect(() => unpackPlain(frame, D)).toThrow(EXTENSION);
    const o = { a: 1 };
    expect(scanPlain(new Packr({ structuredClone: true, useRecords: false }).pack([o, o]), D)).toBe(EXTENSION);
  });

  it('every other extension msgpackr writes: records, Set, Error, RegExp, typed arrays, bundled strings, BigInt, Date', () => {
    const clone = new Packr({ structuredClone: true, moreTypes: true, useRecords: false });
    const packed: Array<[string, Uint8Array]> = [
      ['record', new Packr({ useRecords: true }).pack({ a: 1 })],
      ['Set', clone.pack(new Set([1]))],
      ['Error', clone.pack(new Error('x'))],
      ['RegExp', clone.pack(/x/g)],
      ['Int16Array', clone.pack(new Int16Array([1, 2]))],
      ['ArrayBuffer', clone.pack(new ArrayBuffer(4))],
      ['bundled strings', new Packr({ bundleStrings: true, useRecords: false }).pack(['a'.repeat(20), 'b'.repeat(20)])],
      ['BigInt past 64 bits', new Packr({ useBigIntExtension: true, useRecords: false }).pack(2n ** 70n)],
      ['Date (timestamp 64)', packr.pack(new Date(1))],
      ['Date (timestamp 96)', packr.pack(new Date(2 ** 40 * 1000))],
      ['Date from notepack.io', notepack.encode(new Date(1))],
    ];
    for (const [name, b] of packed) expect(scanPlain(b, D), name).toBe(EXTENSION);
  });

  it('every extension format (fixext 1–16, ext 8/16/32, any type) and the never-used byte 0xc1', () => {
    for (const h of [
      'd4 01 00',
      'd4 00 01',
      'd4 73 00',
      'd5 00 0000',
      'd6 00 00000000',
      'd7 00 0000000000000000',
      'd8 00' + '00'.repeat(16),
      'c7 00 00',
      'c8 0000 00',
      'c9 00000000 00',
      'd6 ff 00000000',
    ]) {
      expect(scanPlain(hex(h), D), h).toBe(EXTENSION);
      expect(scanPlain(hex('91' + h), D), h).toBe(EXTENSION);
    }
    expect(scanPlain(hex('c1'), D)).toBe('the never-used byte 0xc1');
    expect(scanPlain(hex('92 01 c1'), D)).toBe('the never-used byte 0xc1');
  });

  it('timestamps unless asked to let them through (bytes of our own nodes), and even then only type −1 in its three sizes, never as a key', () => {
    const dates: Array<[string, Date]> = [
      ['timestamp 32', new Date(1000)],
      ['timestamp 64', new Date(1)],
      ['timestamp 96', new Date(2 ** 40 * 1000)],
    ];
    for (const [name, d] of dates) {
      const b = packr.pack({ at: d, list: [d] });
      expect(scanPlain(b, D), name).toBe(EXTENSION);
      expect(scanPlain(b, D, true), name).toBeNull();
      expect(unpackPlain(b, D, true), name).toEqual({ at: d, list: [d] });
    }
    expect(new Set(dates.map(([, d]) => packr.pack(d)[0]))).toEqual(new Set([0xd6, 0xd7, 0xc7]));
    for (const h of [
      'd6 69 00000000',
      'd7 00 0000000000000000',
      'c7 0c 00' + '00'.repeat(12),
      'c7 08 ff' + '00'.repeat(8),
      'd6 ff 0000',
      'd5 ff 0000',
      'd8 ff' + '00'.repeat(16),
    ]) {
      expect(scanPlain(hex(h), D, true), h).toMatch(/extension|past the end/);
    }
    expect(scanPlain(hex('81 d6ff00000000 01'), D, true)).toBe(EXTENSION);
    expect(scanPlain(nativeEvent(referenceDag(10)), D, true)).toBe(EXTENSION);
  });

  it("from a node, 64-bit integers past 2^53 pass as BigInts (an app's; the gateway refuses that entry where it measures it)", () => {
    const b = packr.pack({ n: 2n ** 60n, m: -(2n ** 60n) });
    expect(scanPlain(b, D)).toBe(INT64);
    expect(scanPlain(b, D, true)).toBeNull();
    expect(unpackPlain(b, D, true)).toEqual({ n: 2n ** 60n, m: -(2n ** 60n) });
    // within 2^53 still numbers
    expect(unpackPlain(packr.pack({ n: 2n ** 40n }), D, true)).toEqual({ n: 2 ** 40 });
  });

  it('64-bit integers outside ±(2^53−1)', () => {
    for (const h of [
      'cf 00200000 00000000',
      'cf ffffffff ffffffff',
      'cf 80000000 00000000',
      'd3 00200000 00000000',
      'd3 7fffffff ffffffff',
      'd3 ffe00000 00000000',
      'd3 80000000 00000000',
      'd3 80ff0000 00000000',
      'd3 fee00000 00000001',
      'd3 ffdfffff ffffffff',
    ]) {
      expect(scanPlain(hex(h), D), h).toBe(INT64);
    }
    // just inside: exact numbers
    expect(unpackPlain(hex('d3 ffe00000 00000001'), D)).toBe(-(2 ** 53) + 1);
    expect(unpackPlain(hex('cf 001fffff ffffffff'), D)).toBe(2 ** 53 - 1);
    expect(unpackPlain(hex('d3 ffffffff ffffffff'), D)).toBe(-1);
    expect(unpackPlain(hex('cf 00000000 00000000'), D)).toBe(0);
  });

  it('nesting deeper than maxDepth (empty containers count), without recursing', () => {
    const nested = (d: number, inner = '01'): Buffer => hex('91'.repeat(d) + inner);
    expect(scanPlain(nested(5), 5)).toBeNull();
    expect(scanPlain(nested(6), 5)).toBe('nested too deep');
    expect(scanPlain(nested(5, '90'), 5)).toBe('nested too deep');
    expect(scanPlain(nested(4, '80'), 5)).toBeNull();
    expect(scanPlain(hex('81 a161'.repeat(5) + '01'), 5)).toBeNull();
    expect(scanPlain(hex('81 a161'.repeat(6) + '01'), 5)).toBe('nested too deep');
    expect(scanPlain(nested(0), 0)).toBeNull();
    expect(scanPlain(nested(1), 0)).toBe('nested too deep');
    // far deeper than any stack: refused, no RangeError
    expect(scanPlain(nested(1_000_000), 1_000_000)).toBe('nested too deep');
    expect(scanPlain(nested(MAX_SCAN_DEPTH), 1_000_000)).toBeNull();
  });

  it('every truncation of a value, and declared lengths or counts past the end', () => {
    const whole = packr.pack({ s: 'x'.repeat(300), b: new Uint8Array(70_000), a: [1, 2 ** 40, -70_000, 1.5, 'é'], m: { k: null }, i: Number.MAX_SAFE_INTEGER });
    expect(scanPlain(whole, D)).toBeNull();
    for (let n = 0; n < whole.length; n += n < 400 ? 1 : 997) expect(scanPlain(whole.subarray(0, n), D), `first ${n} bytes`).toBe(TRUNCATED);
    // lengths and counts the bytes left cannot hold
    for (const h of ['dd ffffffff', 'df 7fffffff', 'dc 0003 01 01', 'de 0002 a161 01 a162', 'db ffffffff', 'c6 ffffffff', 'da 0002 61', 'c4 02 00', 'a2 61']) {
      expect(scanPlain(hex(h), D), h).toBe(TRUNCATED);
    }
  });

  it('bytes after the value (two values are not one)', () => {
    expect(scanPlain(hex('01 01'), D)).toBe('bytes after the value');
    expect(scanPlain(Buffer.concat([packr.pack({ a: 1 }), Buffer.from([0xc0])]), D)).toBe('bytes after the value');
    expect(scanPlain(hex(''), D)).toBe(TRUNCATED);
  });

  it('map keys that are containers, binaries or undefined', () => {
    for (const h of ['81 90 01', '81 80 01', '81 91 01 01', '81 c4 01 00 01', '81 c5 0001 00 01', '81 c6 00000001 00 01', '81 d4 0000 01']) {
      expect(scanPlain(hex(h), D), h).toBe(KEY);
    }
    // a value may be any of them
    expect(scanPlain(hex('83 a161 90 a162 c40100 a163 d40000'), D)).toBeNull();
  });
});

describe('scanPlain is linear', () => {
  it('a megabyte of small values and a deep chain are read in a few milliseconds at most', () => {
    const big = packr.pack(Array.from({ length: 200_000 }, (_, i) => ({ i, s: 'ab' })));
    expect(big.length).toBeGreaterThan(1_000_000);
    let t = performance.now();
    expect(scanPlain(big, D)).toBeNull();
    expect(performance.now() - t).toBeLessThan(200);
    const chain = hex('91'.repeat(MAX_SCAN_DEPTH) + '01');
    t = performance.now();
    for (let i = 0; i < 1000; i++) scanPlain(chain, MAX_SCAN_DEPTH);
    expect(performance.now() - t).toBeLessThan(200);
  });

  it('random bytes: the scan accepts only what msgpackr decodes to the end', () => {
    let seed = 16;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.from(Array.from({ length: 1 + (rnd() % 12) }, rnd));
      if (scanPlain(b, D) !== null) continue;
      accepted++;
      expect(() => unpackPlain(b, D)).not.toThrow();
    }
    expect(accepted).toBeGreaterThan(100);
  });
});
