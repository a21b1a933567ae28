/**
 * The demo app: what `switchyard start` runs. Every kind of client (native WebSocket, SSE,
 * long-polling, and later Socket.IO, SignalR, SockJS) is served by this same code.
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
      case 'say':
        ctx.broadcast(roomArg(args[0]), 'said', [roomArg(args[0]), String(args[1] ?? ''), session.sid]);
        reply?.(true);
        return;
      case 'whoami':
        reply?.({ sid: session.sid, transport: session.transport, ip: session.meta.ip });
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
