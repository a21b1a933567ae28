/**
 * The demo app, plus a line per handled event in $SY_TEST_LOG_DIR/<pid>.log, written
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
  };
};
export default app;
