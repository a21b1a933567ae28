/**
 * The shared-reference frames of issue 16: msgpackr's structured-clone extensions let a few hundred
 * bytes stand for a value with fan-out^depth paths. For the tests that check they are refused.
 */

const u32 = (k: number): number[] => [k >>> 24, (k >>> 16) & 0xff, (k >>> 8) & 0xff, k & 0xff];
const str = (s: string): number[] => [0xa0 | s.length, ...Buffer.from(s)];

/**
 * An array of `n` (< 16) elements: element 0 is `[1]` tagged with id 0 (`d6 69 <id>`), element k
 * an array of `fanOut` pointers (`d6 70 <id>`) to element k−1, tagged with id k: decoded with
 * references on, element n−1 reaches `[1]` along fanOut^(n−1) paths.
 */
export function referenceDag(n: number, fanOut = 10): Buffer {
  const out: number[] = [0x90 | n, 0xd6, 0x69, ...u32(0), 0x91, 0x01];
  for (let k = 1; k < n; k++) {
    out.push(0xd6, 0x69, ...u32(k), 0x90 | fanOut);
    for (let i = 0; i < fanOut; i++) out.push(0xd6, 0x70, ...u32(k - 1));
  }
  return Buffer.from(out);
}

/** `{type:"event", event:"echo", args: X, ack: 1}`, X the bytes of a msgpack array */
export function nativeEvent(x: Buffer): Buffer {
  return Buffer.from([0x84, ...str('type'), ...str('event'), ...str('event'), ...str('echo'), ...str('args'), ...x, ...str('ack'), 0x01]);
}

/** a SignalR MessagePack Invocation `[1, {}, "1", "Echo", [X], []]`, with its VarInt length prefix */
export function signalrInvocation(x: Buffer): Buffer {
  const body = Buffer.from([0x96, 0x01, 0x80, ...str('1'), ...str('Echo'), 0x91, ...x, 0x90]);
  const prefix: number[] = [];
  let n = body.length;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n > 0) b |= 0x80;
    prefix.push(b);
  } while (n > 0);
  return Buffer.concat([Buffer.from(prefix), body]);
}

/** a socket.io-msgpack-parser EVENT `{type: 2, nsp: "/", data: ["echo", X], id: 1}` */
export function socketioEvent(x: Buffer): Buffer {
  return Buffer.from([0x84, ...str('type'), 0x02, ...str('nsp'), ...str('/'), ...str('data'), 0x92, ...str('echo'), ...x, ...str('id'), 0x01]);
}
