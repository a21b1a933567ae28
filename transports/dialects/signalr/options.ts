/** The SignalR dialect's options: what a node is given, how it resolves, its flags (see docs/signalr.md) */
import { checkInt, stripUndefined, type DialectFlag } from '../../seam/options.ts';

/** The SignalR dialect's options, as given (GatewayOptions.signalr) */
export interface SignalRConfig {
  /** hubs served at `/hubs/<name>` @default ['demo'] */
  hubs?: string[];
  /** the server's Ping interval @default 15000 */
  keepAliveMs?: number;
  /** a WebSocket or SSE client silent this long is gone @default 30000 */
  clientTimeoutMs?: number;
}

/** The SignalR dialect's options, resolved */
export interface SignalROptions {
  /** hub names served at `/hubs/<name>` @default ['demo'] */
  hubs: string[];
  /** the server's Ping, at least this often @default 15000 */
  keepAliveMs: number;
  /** a WebSocket or SSE client silent this long is gone @default 30000 */
  clientTimeoutMs: number;
}

export function resolveSignalR(c: SignalRConfig): SignalROptions {
  const s: SignalROptions = { hubs: ['demo'], keepAliveMs: 15_000, clientTimeoutMs: 30_000, ...stripUndefined(c) };
  for (const k of ['keepAliveMs', 'clientTimeoutMs'] as const) checkInt(`signalr.${k}`, s[k], 10);
  for (const h of s.hubs) if (!/^[A-Za-z0-9_-]{1,64}$/.test(h)) throw new TypeError(`option signalr.hubs: ${JSON.stringify(h)} must match [A-Za-z0-9_-]{1,64}`);
  return s;
}

export const signalRFlags: DialectFlag[] = [
  { flag: 'no-signalr', kind: { t: 'flag' }, sets: false, to: '', def: 'served', help: 'SignalR clients are not served' },
  { flag: 'signalr-hubs', kind: { t: 'list' }, to: 'hubs', def: 'demo', help: 'hubs served at /hubs/<name>, comma-separated' },
  { flag: 'signalr-keep-alive-ms', kind: { t: 'int', min: 10 }, to: 'keepAliveMs', def: '15000', help: "the server's Ping interval" },
  {
    flag: 'signalr-client-timeout-ms',
    kind: { t: 'int', min: 10 },
    to: 'clientTimeoutMs',
    def: '30000',
    help: 'a WebSocket or SSE client silent this long is gone',
  },
];
