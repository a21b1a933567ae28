// @ts-check
/**
 * Switchyard native client — wire protocol v1 (see docs/protocol.md). The public entry point.
 *
 * Dependency-free ES modules (this one and its relative imports in client/): browsers load it from
 * `GET /client.js` (which re-exports `GET /client/switchyard.js`), Node imports it directly.
 * Types: ./switchyard.d.ts (hand-written, kept in sync with the JSDoc of these modules).
 *
 *   import { connect } from '/client.js';
 *   const c = connect('http://localhost:8080', { transports: ['websocket', 'sse', 'polling'] });
 *   c.on('open', ({ sid, recovered }) => { if (!recovered) c.emit('join', 'lobby'); });
 *   c.on('said', (room, text, from) => console.log(room, text, from));
 *   const [pong] = await c.request('echo', 'hi');
 *
 * Delivery guarantees
 * - Server -> client: every `event`/`reply` frame is delivered to the application at most once and
 *   in `seq` order (frames with `seq <= lastSeq` are dropped). After a drop the client reconnects
 *   with `sid`/`token`/`last`, so while the server still holds the session (`open.recovered`),
 *   nothing is lost either: exactly once, in order.
 * - Client -> server: frames are sent in order. Frames emitted while disconnected are queued
 *   (bounded by `maxQueue`) and sent after the next open. Event and reply frames carry `cseq`
 *   (1, 2, 3… per session), so frames resent after a failed POST /rt/send, which may have arrived
 *   after all, reach the application once (the gateway drops a repeated `cseq`). The protocol has
 *   no upstream acknowledgement, so a frame written to a connection that then dies may be lost;
 *   use `request()` (which times out) when you need to know.
 * - Server requests: a server event with `ack` gets a reply callback as its listeners' last
 *   argument: `c.on('confirm', (text, reply) => reply(true))`.
 *
 * Modules: client.js (SwitchyardClient's methods) on session.js (connecting, resuming, frames
 * from the server), with emitter.js, options.js, requests.js, errors.js; the connections
 * conn-websocket.js, conn-sse.js, conn-polling.js share conn.js; upstream.js batches POST /rt/send;
 * remember.js keeps the remembered fallback transport (docs/client.md, "Fallback").
 */
import { SwitchyardClient } from './client.js';
/** @import { ClientOptions } from './types.js' */

export { SwitchyardClient };
export { isTerminalCode, SwitchyardError } from './errors.js';

/**
 * Connect to a Switchyard gateway. Same as `new SwitchyardClient(url, options).open()`.
 * In a browser `url` may be omitted (defaults to the page's origin).
 * @param {string | URL | ClientOptions} [url]
 * @param {ClientOptions} [options]
 * @returns {SwitchyardClient}
 */
export function connect(url, options) {
  return new SwitchyardClient(url, options).open();
}
