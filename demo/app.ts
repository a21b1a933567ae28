/**
 * The demo app: what `switchyard start` runs. Events: echo, join [room], leave [room],
 * say [room, text, transport?] → said [room, text, fromSid, { client, transport }] to the room,
 * whoami → { sid, client, transport, ip }. Every kind of client (native WebSocket, SSE and
 * long-polling; Socket.IO, SignalR, SockJS) is served by this same code.
 */
import type { App } from '../cluster/app.ts';

const demoApp: App = (ctx) => ({
  event(session, event, args, reply) {
    switch (event) {
      case 'echo':
        if (reply) reply(...args);
        else session.emit('echo', ...args);
        return;
      case 'join':
        session.join(roomArg(args[0]));
        reply?.(true);
        return;
      case 'leave':
        session.leave(roomArg(args[0]));
        reply?.(true);
        return;
      case 'say': {
        // the sender's client kind and transport go with the message; a client that upgraded
        // since it opened (Socket.IO) names its transport now as an optional third arg
        const via = { client: session.meta.dialect, transport: typeof args[2] === 'string' && args[2].length <= 32 ? args[2] : session.transport };
        ctx.broadcast(roomArg(args[0]), 'said', [roomArg(args[0]), String(args[1] ?? ''), session.sid, via]);
        reply?.(true);
        return;
      }
      case 'whoami':
        reply?.({ sid: session.sid, client: session.meta.dialect, transport: session.transport, ip: session.meta.ip });
        return;
      default:
        throw new Error(`unknown event ${JSON.stringify(event)}`);
    }
  },
});

function roomArg(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 128) throw new Error('room must be a string of 1-128 characters');
  return v;
}

export default demoApp;
