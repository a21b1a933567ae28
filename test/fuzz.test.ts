/**
 * Property tests (fast-check) over every decoder a client's bytes reach: whatever comes in, each
 * returns a valid result or its documented refusal (null, or its own protocol error), and never
 * throws anything else or hangs. Arbitrary bytes and strings, plus near-valid frames (valid ones
 * with a byte changed, cut, or a field of the wrong type), which reach deeper than random noise.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { decodeClientBatch, decodeClientFrame } from '../transports/dialects/native/codec.ts';
import { defaultParser, fastEvent, msgpackParser, SocketIoProtocolError } from '../transports/dialects/socketio/codec.ts';
import { HubProtocolError, hubProtocols, parseHandshake } from '../transports/dialects/signalr/codec.ts';

const RUNS = 2000;
const enc = new TextEncoder();

const CLIENT_TYPES = new Set(['event', 'reply', 'ack', 'pong', 'close']);

/** a valid native frame as a value */
const nativeFrame = fc.oneof(
  fc.record(
    { type: fc.constant('event'), event: fc.string({ minLength: 1, maxLength: 20 }), args: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 4 }) },
    { requiredKeys: ['type', 'event'] },
  ),
  fc.record({
    type: fc.constant('event'),
    event: fc.constant('echo'),
    args: fc.array(fc.string(), { maxLength: 2 }),
    ack: fc.nat(),
    cseq: fc.integer({ min: 1 }),
  }),
  fc.record({
    type: fc.constant('reply'),
    ack: fc.oneof(fc.nat(), fc.string({ maxLength: 10 })),
    args: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
  }),
  fc.record({ type: fc.constant('ack'), last: fc.nat() }),
  fc.constant({ type: 'pong' }),
  fc.constant({ type: 'close' }),
);

/** bytes of a valid encoding, mangled: one byte changed, cut short, or left as they are */
function mangled(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'keep')).map(([b, at, v, how]) => {
    if (b.length === 0 || how === 'keep') return b;
    const i = at % b.length;
    if (how === 'cut') return b.subarray(0, i);
    const c = b.slice();
    c[i] = v;
    return c;
  });
}

const anyBytes = fc.uint8Array({ maxLength: 300 });

describe('native frames', () => {
  it('JSON text: any bytes decode to null or a client frame of a known type', () => {
    const input = fc.oneof(
      anyBytes,
      mangled(nativeFrame.map((f) => enc.encode(JSON.stringify(f)))),
      fc.string().map((s) => enc.encode(s)),
    );
    let valid = 0;
    fc.assert(
      fc.property(input, (b) => {
        const f = decodeClientFrame(b, false);
        if (f !== null) expect(CLIENT_TYPES.has(f.type)).toBe(true), valid++;
      }),
      { numRuns: RUNS },
    );
    // the near-valid inputs reach the decoders' accepting paths too, not only the first check
    expect(valid).toBeGreaterThan(RUNS / 20);
  });

  it('msgpack: any bytes decode to null or a client frame of a known type', () => {
    const input = fc.oneof(anyBytes, mangled(nativeFrame.map((f) => pack(f) as Uint8Array)));
    let valid = 0;
    fc.assert(
      fc.property(input, (b) => {
        const f = decodeClientFrame(b, true);
        if (f !== null) expect(CLIENT_TYPES.has(f.type)).toBe(true), valid++;
      }),
      { numRuns: RUNS },
    );
    expect(valid).toBeGreaterThan(RUNS / 20);
  });

  it('upstream batches (JSON and msgpack arrays): null or an array of valid frames', () => {
    const input = fc.oneof(
      anyBytes,
      mangled(fc.array(nativeFrame, { maxLength: 4 }).map((a) => enc.encode(JSON.stringify(a)))),
      mangled(fc.array(nativeFrame, { maxLength: 4 }).map((a) => pack(a) as Uint8Array)),
    );
    fc.assert(
      fc.property(input, fc.boolean(), (b, binary) => {
        const fs = decodeClientBatch(b, binary);
        if (fs !== null) for (const f of fs) expect(CLIENT_TYPES.has(f.type)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('Socket.IO packets', () => {
  const sioText = fc.oneof(
    fc.string(),
    fc
      .tuple(
        fc.constantFrom('0', '1', '2', '3', '4', '5', '6', '7'),
        fc.option(fc.constantFrom('/', '/chat,')),
        fc.option(fc.nat()),
        fc.jsonValue({ maxDepth: 3 }),
      )
      .map(([t, nsp, id, data]) => `${t}${nsp ?? ''}${id ?? ''}${JSON.stringify(data) ?? ''}`),
    fc.tuple(fc.string({ maxLength: 10 }), fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 })).map(([e, a]) => `2${JSON.stringify([e, ...a])}`),
  );

  it('default parser: a packet, null (waiting for attachments) or SocketIoProtocolError; fastEvent: null or an event', () => {
    let packets = 0;
    fc.assert(
      fc.property(fc.array(fc.oneof(sioText, anyBytes), { minLength: 1, maxLength: 4 }), (msgs) => {
        const d = defaultParser.decoder();
        for (const m of msgs) {
          try {
            if (d.add(m) !== null) packets++;
          } catch (err) {
            expect(err).toBeInstanceOf(SocketIoProtocolError);
            return;
          }
        }
        for (const m of msgs)
          if (typeof m === 'string') {
            const f = fastEvent(m);
            if (f !== null) expect(f.type).toBe('event');
          }
      }),
      { numRuns: RUNS },
    );
    expect(packets).toBeGreaterThan(RUNS / 20);
  });

  it('msgpack parser: a packet or SocketIoProtocolError for any bytes', () => {
    const packet = fc.record(
      {
        type: fc.integer({ min: -1, max: 8 }),
        nsp: fc.oneof(fc.constant('/'), fc.string({ maxLength: 6 })),
        data: fc.jsonValue({ maxDepth: 2 }),
        id: fc.option(fc.nat(), { nil: undefined }),
      },
      { requiredKeys: ['type'] },
    );
    fc.assert(
      fc.property(fc.oneof(anyBytes, mangled(packet.map((p) => pack(p) as Uint8Array)), fc.string()), (m) => {
        try {
          msgpackParser.decoder().add(m);
        } catch (err) {
          expect(err).toBeInstanceOf(SocketIoProtocolError);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('SignalR hub messages', () => {
  const hubJson = fc.oneof(
    fc.string(),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) + '\x1e'),
    fc
      .record(
        {
          type: fc.integer({ min: 0, max: 10 }),
          invocationId: fc.string({ maxLength: 5 }),
          target: fc.string({ maxLength: 8 }),
          arguments: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
          sequenceId: fc.nat(),
        },
        { requiredKeys: ['type'] },
      )
      .map((m) => JSON.stringify(m) + '\x1e'),
  );

  it('JSON: messages or HubProtocolError', () => {
    let decoded = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          hubJson,
          fc.array(hubJson, { maxLength: 3 }).map((a) => a.join('')),
        ),
        (m) => {
          try {
            for (const msg of hubProtocols.json.decode(m)) expect(typeof msg.type).toBe('number'), decoded++;
          } catch (err) {
            expect(err).toBeInstanceOf(HubProtocolError);
          }
        },
      ),
      { numRuns: RUNS },
    );
    expect(decoded).toBeGreaterThan(RUNS / 20);
  });

  it('MessagePack: messages or HubProtocolError, for any bytes and mangled length-prefixed arrays', () => {
    const message = fc.array(
      fc.oneof(
        fc.integer({ min: -1, max: 10 }),
        fc.string({ maxLength: 6 }),
        fc.constant({}),
        fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
        fc.constant(null),
      ),
      { minLength: 1, maxLength: 6 },
    );
    const framed = message.map((a) => {
      const body = pack(a) as Uint8Array;
      const out = new Uint8Array(body.length + 2);
      out[0] = (body.length & 0x7f) | (body.length > 0x7f ? 0x80 : 0);
      out[1] = body.length >> 7;
      out.set(body, body.length > 0x7f ? 2 : 1);
      return body.length > 0x7f ? out : out.subarray(0, body.length + 1);
    });
    fc.assert(
      fc.property(fc.oneof(anyBytes, mangled(framed)), (m) => {
        try {
          for (const msg of hubProtocols.messagepack.decode(m)) expect(typeof msg.type).toBe('number');
        } catch (err) {
          expect(err).toBeInstanceOf(HubProtocolError);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('the handshake: a protocol, an error, or null (incomplete), for any text or bytes', () => {
    // found by this property: a name on Object.prototype is no protocol
    expect(parseHandshake('{"protocol":"toString","version":0}\x1e')).toEqual({ error: "The protocol 'toString' is not supported." });
    const hs = fc
      .record(
        { protocol: fc.oneof(fc.constantFrom('json', 'messagepack'), fc.string({ maxLength: 8 })), version: fc.oneof(fc.nat(3), fc.string({ maxLength: 2 })) },
        { requiredKeys: [] },
      )
      .map((h) => JSON.stringify(h) + '\x1e');
    fc.assert(
      fc.property(fc.oneof(hs, fc.string(), anyBytes, mangled(hs.map((s) => enc.encode(s)))), (m) => {
        const r = parseHandshake(m);
        if (r !== null) expect('error' in r ? typeof r.error : r.protocol.name).toMatch(/^(string|json|messagepack)$/);
      }),
      { numRuns: RUNS },
    );
  });
});
