/** The Socket.IO packet parsers on their own: what each text or msgpack packet decodes to, or why it is refused. */
import { describe, expect, it } from 'vitest';
import { Packr, pack } from 'msgpackr';
import {
  ACK,
  BINARY_EVENT,
  CONNECT,
  EVENT,
  SocketIoProtocolError,
  decodeText,
  defaultParser,
  fastEvent,
  msgpackParser,
} from '../transports/dialects/socketio/codec.ts';

describe('the default parser', () => {
  it('decodes type, namespace, ack id and payload', () => {
    expect(decodeText('0')).toMatchObject({ type: CONNECT, nsp: '/' });
    expect(decodeText('0/admin,{"token":"x"}')).toMatchObject({ type: CONNECT, nsp: '/admin', data: { token: 'x' } });
    expect(decodeText('0/admin')).toMatchObject({ type: CONNECT, nsp: '/admin' });
    expect(decodeText('212["a",1]')).toMatchObject({ type: EVENT, nsp: '/', id: 12, data: ['a', 1], raw: '[1]' });
    expect(decodeText('2/x,7["a"]')).toMatchObject({ type: EVENT, nsp: '/x', id: 7, data: ['a'], raw: '[]' });
    expect(decodeText('37[1,{"b":2}]')).toMatchObject({ type: ACK, id: 7, data: [1, { b: 2 }] });
    expect(decodeText('51-["a",{"_placeholder":true,"num":0}]')).toMatchObject({ type: BINARY_EVENT, attachments: 1 });
  });

  it.each([
    ['unknown packet type', '7'],
    ['empty', ''],
    ['payload not JSON', '2["a"'],
    ['event payload not an array', '2{"a":1}'],
    ['event name reserved', '2["disconnect"]'],
    ['event without a name', '2[]'],
    ['connect payload not an object', '0[1]'],
    ['disconnect with a payload', '1{}'],
    ['binary without a dash', '51["a"]'],
    ['ack id too large to be exact', '299999999999999999["a"]'],
    ['args nested too deep', '2["a",' + '['.repeat(40) + ']'.repeat(40) + ']'],
  ])('refuses %s', (_name, text) => {
    expect(() => decodeText(text)).toThrow(SocketIoProtocolError);
  });

  it('puts attachments back in place of their placeholders, and refuses what does not fit', () => {
    const d = defaultParser.decoder();
    expect(d.add('52-3["a",{"x":{"_placeholder":true,"num":1}},{"_placeholder":true,"num":0}]')).toBeNull();
    expect(d.idle).toBe(false);
    expect(d.add(Buffer.from([1]))).toBeNull();
    const p = d.add(Buffer.from([2]))!;
    expect(p).toMatchObject({ type: EVENT, id: 3 });
    expect(p.data).toEqual(['a', { x: Buffer.from([2]) }, Buffer.from([1])]);
    expect(d.idle).toBe(true);
    expect(() => defaultParser.decoder().add(Buffer.from([1]))).toThrow(SocketIoProtocolError);
    const e = defaultParser.decoder();
    e.add('51-["a",{"_placeholder":true,"num":0}]');
    expect(() => e.add('2["b"]')).toThrow(SocketIoProtocolError);
  });

  it('refuses a packet whose placeholders use one attachment twice (socket.io-client sends one per occurrence)', () => {
    const reused = defaultParser.decoder();
    expect(reused.add('51-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]')).toBeNull();
    expect(() => reused.add(Buffer.from([1]))).toThrow(SocketIoProtocolError);
    // the amplification: one attachment placed many times over (here nested, then in an ack)
    const many = defaultParser.decoder();
    const refs = Array.from({ length: 1000 }, () => '{"_placeholder":true,"num":0}').join(',');
    expect(many.add(`61-9[{"x":[${refs}]}]`)).toBeNull();
    expect(() => many.add(Buffer.alloc(100_000))).toThrow('an attachment placed twice');
    // each used once, in any order: fine
    const once = defaultParser.decoder();
    once.add('52-["a",{"_placeholder":true,"num":1},[{"_placeholder":true,"num":0}]]');
    once.add(Buffer.from([1]));
    expect(once.add(Buffer.from([2]))!.data).toEqual(['a', Buffer.from([2]), [Buffer.from([1])]]);
  });

  it('encodes bytes as placeholders and attachments (BINARY_EVENT, BINARY_ACK)', () => {
    const b = Buffer.from([9]);
    expect(defaultParser.encode(EVENT, '/', undefined, ['e', { k: b }])).toEqual(['51-["e",{"k":{"_placeholder":true,"num":0}}]', b]);
    expect(defaultParser.encode(ACK, '/x', 4, [b])).toEqual(['61-/x,4[{"_placeholder":true,"num":0}]', b]);
    expect(defaultParser.encode(EVENT, '/', 2, ['e', 1])).toEqual(['22["e",1]']);
  });

  it('the fast path decodes what the general decoder decodes, the same way, and leaves everything else to it', () => {
    const cases = [
      '2["echo","x"]',
      '2["echo"]',
      '27["echo",1,{"a":[true,null]}]',
      '2["é€😀",["nested"]]',
      '2["with \\"quote",1]',
      '2[1,2]',
      '2["disconnect"]',
      '2["echo",1]x',
      '2["echo"]]',
      '2["echo",' + '['.repeat(40) + ']'.repeat(40) + ']',
      '2/admin,["echo"]',
      '2{"a":1}',
    ];
    for (const text of cases) {
      const fast = fastEvent(text);
      if (fast === null) continue; // the general decoder decides
      const p = decodeText(text);
      const want: Record<string, unknown> = { type: 'event', event: (p.data as unknown[])[0], args: (p.data as unknown[]).slice(1), raw: p.raw };
      if (p.id !== undefined) want.ack = p.id;
      expect(fast, text).toEqual(want);
    }
    expect(fastEvent('2["echo","x"]')).toEqual({ type: 'event', event: 'echo', args: ['x'], raw: '["x"]' });
    expect(fastEvent('27["echo"]')).toEqual({ type: 'event', event: 'echo', args: [], ack: 7, raw: '[]' });
    for (const text of ['2["with \\"quote",1]', '2[1,2]', '2["disconnect"]', '2["echo",1]x', '2["echo"]]', '2/admin,["echo"]'])
      expect(fastEvent(text), text).toBeNull();
  });
});

/** a msgpack EVENT packet {type: 2, nsp: '/', data: ['e', N]} with N written as a uint 64 (0xcf) of these 8 bytes */
function eventWithUint64(bytes: number[]): Buffer {
  return Buffer.from([
    0x83,
    0xa4,
    ...Buffer.from('type'),
    0x02,
    0xa3,
    ...Buffer.from('nsp'),
    0xa1,
    0x2f,
    0xa4,
    ...Buffer.from('data'),
    0x92,
    0xa1,
    0x65,
    0xcf,
    ...bytes,
  ]);
}

describe('socket.io-msgpack-parser', () => {
  it('one msgpack map per packet, bytes inside it', () => {
    const d = msgpackParser.decoder();
    expect(d.add(pack({ type: 2, nsp: '/', data: ['e', Buffer.from([1, 2])], id: 5 }))).toEqual({
      type: EVENT,
      nsp: '/',
      id: 5,
      data: ['e', Buffer.from([1, 2])],
    });
    expect(d.add(pack({ type: 0, nsp: '/admin' }))).toEqual({ type: CONNECT, nsp: '/admin' });
    const [frame] = msgpackParser.encode(EVENT, '/', undefined, ['e', 1]);
    expect(frame).toBeInstanceOf(Uint8Array);
  });

  it("decodes notepack.io's undefined, and its 64-bit integers as exact numbers (they were BigInts, then refused)", () => {
    const d = msgpackParser.decoder();
    // socket.io-client's CONNECT without auth: `data: undefined`, which notepack.io writes as d4 00 00
    expect(
      d.add(Buffer.from([0x83, 0xa4, ...Buffer.from('type'), 0x00, 0xa4, ...Buffer.from('data'), 0xd4, 0x00, 0x00, 0xa3, ...Buffer.from('nsp'), 0xa1, 0x2f])),
    ).toEqual({ type: CONNECT, nsp: '/' });
    // ["e", 2^40] with 2^40 as uint 64
    const p = d.add(eventWithUint64([0, 0, 1, 0, 0, 0, 0, 0]));
    expect(p).toEqual({ type: EVENT, nsp: '/', data: ['e', 2 ** 40] });
  });

  it.each([
    ['text', '2["e"]'],
    ['not msgpack', Buffer.from([0xc1])],
    ['a binary type (the msgpack parser has none)', pack({ type: 5, nsp: '/', data: ['e'] })],
    ['no namespace', pack({ type: 2, data: ['e'] })],
    ['an event without array data', pack({ type: 2, nsp: '/', data: { a: 1 } })],
    ['a fractional id', pack({ type: 2, nsp: '/', data: ['e'], id: 1.5 })],
    [
      'shared references (msgpackr structured clone)',
      new Packr({ structuredClone: true, useRecords: false }).pack({ type: 2, nsp: '/', data: ['e', ...Array(3).fill({ a: [1] })] }),
    ],
    ['a Date (an extension)', pack({ type: 2, nsp: '/', data: ['e', new Date(1)] })],
    ['an integer past 2^53', eventWithUint64([0, 0x20, 0, 0, 0, 0, 0, 0])],
  ])('refuses %s', (_name, msg) => {
    expect(() => msgpackParser.decoder().add(msg as string | Uint8Array)).toThrow(SocketIoProtocolError);
  });
});
