/**
 * The demo app, plus a line per handled event (and session open and close) in $SY_TEST_LOG_DIR/<pid>.log, written
 * synchronously so it survives a SIGKILL: the failure tests count how often the app (across all
 * worker processes) handled each event.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import demo from '../../demo/app.ts';
import type { App, AppHandlers } from '../../cluster/app.ts';

const dir = process.env.SY_TEST_LOG_DIR;
const file = dir ? join(dir, `${process.pid}.log`) : null;

const app: App = (ctx) => {
  const inner = (typeof demo === 'function' ? demo(ctx) : demo) as AppHandlers;
  return {
    ...inner,
    event(session, event, args, reply) {
      if (file) appendFileSync(file, `${session.sid} ${event} ${JSON.stringify(args)}\n`);
      return inner.event(session, event, args, reply);
    },
    // `<sid> @open []` and `<sid> @close [code,"reason"]`: when the app heard a session begin and end
    open(session) {
      if (file) appendFileSync(file, `${session.sid} @open []\n`);
      return inner.open?.(session);
    },
    close(session, info) {
      if (file) appendFileSync(file, `${session.sid} @close ${JSON.stringify([info.code, info.reason])}\n`);
      return inner.close?.(session, info);
    },
  };
};
export default app;
