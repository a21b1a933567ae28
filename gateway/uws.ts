/**
 * The one file that loads uWebSockets.js. The npm package we use falls back, silently, to a slow
 * `ws`-based shim when its native binary does not load; we detect which one we got so the
 * gateway can say it loudly (start-up log and /healthz).
 */
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

const require = createRequire(import.meta.url);
const uWS = require('uWebSockets.js') as typeof UWS;

/** `native` when the C++ binary is in use, `fallback` when the package fell back to its JS shim */
export const engine: 'native' | 'fallback' = String(uWS.App).includes('[native code]') ? 'native' : 'fallback';

export default uWS;
export type { HttpRequest, HttpResponse, TemplatedApp, WebSocket, us_listen_socket } from 'uWebSockets.js';
