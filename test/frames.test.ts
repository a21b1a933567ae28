import { describe, expect, it } from 'vitest';
import { decodeClientFrame, eventTail } from '../transports/frames.ts';

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

  it('falls back to a full parse for other shapes, and still validates', () => {
    expect(decodeClientFrame(enc('{"type":"event","event":"x","args":[1],"ack":3}'), false)).toEqual({ type: 'event', event: 'x', args: [1], ack: 3 });
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

  it('encodes an event tail from the raw args when given, from the args otherwise', () => {
    expect(eventTail('e', [1, 'x'])).toBe(',"event":"e","args":[1,"x"]}');
    expect(eventTail('e', [1, 'x'], '[1, "x"]')).toBe(',"event":"e","args":[1, "x"]}');
  });
});
