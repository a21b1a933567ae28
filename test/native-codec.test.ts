import { describe, expect, it } from 'vitest';
import { Packr, pack, unpack } from 'msgpackr';
import { decodeClientBatch, decodeClientFrame, encodeStats, eventTail, nativeCodecs } from '../transports/dialects/native/codec.ts';
import { Entry, MAX_DEPTH } from '../transports/seam/entry.ts';

const enc = (s: string) => new TextEncoder().encode(s);

describe('client frame decoding', () => {
  it('takes the fast path for the common event shape, keeping the raw args text', () => {
    expect(decodeClientFrame(enc('{"type":"event","event":"echo","args":["a",1,{"b":[2]}]}'), false)).toEqual({
      type: 'event',
      event: 'echo',
      args: ['a', 1, { b: [2] }],
      raw: '["a",1,{"b":[2]}]',
    });
  });

  it('takes an integer ack on the fast path (a request), keeping the raw args text', () => {
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"ack":3}'), false)).toEqual({
      type: 'event',
      event: 'x',
      args: [1],
      raw: '[1]',
      ack: 3,
    });
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":["a"],"ack":0}'), false)).toEqual({
      type: 'event',
      event: 'x',
      args: ['a'],
      raw: '["a"]',
      ack: 0,
    });
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[],"ack":123456789012345}'), false)).toEqual({
      type: 'event',
      event: 'x',
      args: [],
      raw: '[]',
      ack: 123456789012345,
    });
  });

  it('falls back to a full parse for other shapes, and still validates', () => {
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"ack":"k"}'), false)).toEqual({ type: 'event', event: 'x', args: [1], ack: 'k' });
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"ack":-3}'), false)).toEqual({ type: 'event', event: 'x', args: [1], ack: -3 });
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"ack":1.5}'), false)).toEqual({ type: 'event', event: 'x', args: [1], ack: 1.5 });
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"ack":12345678901234567}'), false)).toEqual({
      type: 'event',
      event: 'x',
      args: [1],
      ack: 12345678901234568, // JSON.parse rounds the ack past 2^53 so
    });
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"cseq":2,"ack":3}'), false)).toEqual({
      type: 'event',
      event: 'x',
      args: [1],
      ack: 3,
      cseq: 2,
    });
    expect(decodeClientFrame(enc('{"event":"x","type":"event"}'), false)).toEqual({ type: 'event', event: 'x', args: [] });
    expect(decodeClientFrame(enc('{"type":"event","event":"a\\"b","args":[]}'), false)).toEqual({ type: 'event', event: 'a"b', args: [] });
  });

  it.each([
    '{"type":"event","event":"x","args":[1}',
    '{"type":"event","event":"x","args":[1]]}',
    '{"type":"event","event":"","args":[]}',
    '{"type":"event","event":"x","args":{"a":1}}',
    '{"type":"event","event":"x","args":[1],"args":[2] }x',
  ])('rejects %s', (text) => {
    expect(decodeClientFrame(enc(text), false)).toBeNull();
  });

  it('takes a trailing cseq on the fast path, and validates it everywhere', () => {
    expect(decodeClientFrame(enc('{"type":"event","event":"echo","args":[1],"cseq":7}'), false)).toEqual({
      type: 'event',
      event: 'echo',
      args: [1],
      raw: '[1]',
      cseq: 7,
    });
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"ack":3,"cseq":8}'), false)).toEqual({
      type: 'event',
      event: 'x',
      args: [1],
      raw: '[1]',
      ack: 3,
      cseq: 8,
    });
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"ack":03,"cseq":8}'), false)).toBeNull();
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"cseq":1234567890123456789}'), false)).toBeNull();
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[],"cseq":0}'), false)).toBeNull();
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[],"cseq":"1"}'), false)).toBeNull();
    expect(decodeClientFrame(enc('{"type":"reply","ack":4,"args":[true],"cseq":9}'), false)).toEqual({ type: 'reply', ack: 4, args: [true], cseq: 9 });
    expect(decodeClientFrame(enc('{"type":"reply","ack":4,"error":"no","args":[]}'), false)).toBeNull();
  });

  it('reads non-ASCII names and args right (the fast path reads bytes: such names take the general path)', () => {
    expect(decodeClientFrame(enc('{"type":"event","event":"héllo","args":["ünï",1]}'), false)).toEqual({ type: 'event', event: 'héllo', args: ['ünï', 1] });
    expect(decodeClientFrame(enc('{"type":"event","event":"e","args":["ünï"]}'), false)).toEqual({ type: 'event', event: 'e', args: ['ünï'], raw: '["ünï"]' });
    expect(decodeClientFrame(enc('{"type":"event","event":"e","args":[1],"cseq":07}'), false)).toBeNull();
  });

  it('refuses what JSON.parse would refuse even on the fast path (a control character in the name)', () => {
    expect(decodeClientFrame(enc('{"type":"event","event":"a\nb","args":[]}'), false)).toBeNull();
  });

  it(`refuses args nested deeper than ${MAX_DEPTH}, and 64-bit integers past 2^53; smaller 64-bit integers are numbers`, () => {
    const deep = '['.repeat(MAX_DEPTH + 1) + ']'.repeat(MAX_DEPTH + 1);
    expect(decodeClientFrame(enc(`{"type":"event","event":"x","args":${deep}}`), false)).toBeNull();
    expect(decodeClientFrame(enc(`{"type":"event","event":"x","args":${deep},"ack":1}`), false)).toBeNull();
    const ok = '['.repeat(MAX_DEPTH - 1) + ']'.repeat(MAX_DEPTH - 1);
    expect(decodeClientFrame(enc(`{"type":"event","event":"x","args":${ok}}`), false)).not.toBeNull();
    // {type:'event', event:'x', args:[<the 64-bit integer n>]}
    const frame = (n: number[]) => Buffer.from([0x83, ...pack('type'), ...pack('event'), ...pack('event'), ...pack('x'), ...pack('args'), 0x91, ...n]);
    expect(decodeClientFrame(frame([0xcf, 0, 0, 0, 0, 0, 0, 0, 5]), true)).toEqual({ type: 'event', event: 'x', args: [5] });
    expect(decodeClientFrame(frame([0xcf, 0xff, 0, 0, 0, 0, 0, 0, 5]), true)).toBeNull();
  });

  it('msgpack: plain values only, no shared references or other extensions; as deep as JSON allows, in a frame and in a batch', () => {
    const nested = (levels: number): unknown => {
      let v: unknown = 1;
      for (let i = 0; i < levels; i++) v = [v];
      return v;
    };
    // args MAX_DEPTH containers deep (args itself included): accepted, one more refused, as in JSON
    const deepest = (nested(MAX_DEPTH) as unknown[])[0];
    const f = { type: 'event', event: 'x', args: [deepest] };
    expect(decodeClientFrame(pack(f), true)).toEqual(f);
    expect(decodeClientBatch(pack([f, f]), true)).toEqual([f, f]);
    const tooDeep = { type: 'event', event: 'x', args: [[deepest]] };
    expect(decodeClientFrame(pack(tooDeep), true)).toBeNull();
    expect(decodeClientBatch(pack([tooDeep]), true)).toBeNull();
    // msgpackr's structured clone: one object referenced three times
    const shared = { a: [1, 2] };
    const refs = new Packr({ structuredClone: true, useRecords: false }).pack({ type: 'event', event: 'x', args: [shared, shared, shared] });
    expect(decodeClientFrame(refs, true)).toBeNull();
    expect(decodeClientBatch(Buffer.concat([Buffer.from([0x91]), refs]), true)).toBeNull();
    // a Date (timestamp extension), a Set, trailing bytes
    expect(decodeClientFrame(pack({ type: 'event', event: 'x', args: [new Date(1)] }), true)).toBeNull();
    expect(
      decodeClientFrame(
        new Packr({ structuredClone: true, moreTypes: true, useRecords: false }).pack({ type: 'event', event: 'x', args: [new Set([1])] }),
        true,
      ),
    ).toBeNull();
    expect(decodeClientFrame(Buffer.concat([pack({ type: 'event', event: 'x', args: [] }), Buffer.from([0xc0])]), true)).toBeNull();
    // `undefined` (msgpackr writes d4 00 00) stays plain
    expect(decodeClientFrame(pack({ type: 'event', event: 'x', args: [undefined, 1] }), true)).toEqual({ type: 'event', event: 'x', args: [undefined, 1] });
  });

  it('encodes an event tail', () => {
    expect(eventTail('e', '[1,"x"]')).toBe(',"event":"e","args":[1,"x"]}');
    expect(eventTail('e', '[]', 3)).toBe(',"event":"e","args":[],"ack":3}');
  });

  it('encodes an entry the same way for every recipient, building a shared one once per codec', () => {
    const e = Entry.event('b', ['hi', new Uint8Array([1, 2])], undefined, undefined, true)!;
    const before = encodeStats.bodies;
    const j1 = nativeCodecs.json.encode(1, e);
    const j2 = nativeCodecs.json.encode(7, e);
    const m1 = nativeCodecs.msgpack.encode(1, e) as Uint8Array;
    const m2 = nativeCodecs.msgpack.encode(300, e) as Uint8Array;
    expect(encodeStats.bodies - before).toBe(2);
    expect(JSON.parse(j1 as string)).toEqual({ type: 'event', seq: 1, event: 'b', args: ['hi', 'AQI='] });
    expect(JSON.parse(j2 as string).seq).toBe(7);
    expect(unpack(m1)).toEqual({ type: 'event', seq: 1, event: 'b', args: ['hi', new Uint8Array([1, 2])] });
    expect(unpack(m2)).toEqual({ type: 'event', seq: 300, event: 'b', args: ['hi', new Uint8Array([1, 2])] });
    const u = Entry.event('u', [1])!;
    nativeCodecs.json.encode(1, u);
    nativeCodecs.json.encode(1, u);
    expect(encodeStats.bodies - before).toBe(4); // not shared: not cached
  });
});
