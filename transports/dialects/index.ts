/**
 * The dialects a node serves, in one list. The gateway mounts what this registry gives it and
 * names no dialect itself: a fifth dialect is a folder beside these (its codec.ts and dialect.ts, with a
 * `mount…` function) and a line here (docs/architecture.md, "Adding a fifth dialect").
 * (Each dialect's options are still read by gateway/options.ts and gateway/config.ts: issue 18.)
 */
import type { Port } from '../seam/port.ts';
import { NATIVE_DIALECT } from './native/codec.ts';
import { mountNative } from './native/dialect.ts';
import { mountSocketIo, type SocketIoOptions } from './socketio/dialect.ts';
import { mountSignalR, type SignalROptions } from './signalr/dialect.ts';
import { mountSockJs, type SockJsOptions } from './sockjs/dialect.ts';

export type { SignalROptions, SocketIoOptions, SockJsOptions };

/** Each dialect's resolved options, or false when the node does not serve it */
export interface DialectOptions {
  socketio: SocketIoOptions | false;
  signalr: SignalROptions | false;
  sockjs: SockJsOptions | false;
}

/** A dialect a node serves: what `/healthz` says of it, and what a closing node stops */
export interface MountedDialect {
  /** its key in `/healthz` */
  readonly name: string;
  /** the dialect's own object, when it has one (diagnostics and tests look inside) */
  readonly endpoint?: unknown;
  stats?(): unknown;
  /** the node closes: its own timers stop, its connections end (told to reconnect) */
  stop?(): void;
}

interface Dialect {
  /** mounts its routes on the node's app; null when its options turn it off */
  mount(port: Port, o: DialectOptions): MountedDialect | null;
}

const DIALECTS: readonly Dialect[] = [
  {
    mount(port) {
      mountNative(port);
      return { name: 'native' };
    },
  },
  {
    mount(port, o) {
      if (o.socketio === false) return null;
      const engine = mountSocketIo(port, o.socketio);
      return { name: 'socketio', endpoint: engine, stats: () => engine.stats(), stop: () => engine.stop() };
    },
  },
  {
    mount(port, o) {
      if (o.signalr === false) return null;
      const sr = mountSignalR(port, o.signalr);
      return { name: 'signalr', endpoint: sr, stats: () => sr.stats(), stop: () => sr.stop() };
    },
  },
  {
    mount(port, o) {
      if (o.sockjs === false) return null;
      mountSockJs(port, o.sockjs);
      return { name: 'sockjs' };
    },
  },
];

/** Mounts every dialect the options turn on, in a fixed order (native first) */
export function mountDialects(port: Port, o: DialectOptions): MountedDialect[] {
  const out: MountedDialect[] = [];
  for (const d of DIALECTS) {
    const m = d.mount(port, o);
    if (m !== null) out.push(m);
  }
  return out;
}

/**
 * Whether a dialect's clients take a new session token at every open (`meta.dialect`): native
 * clients keep the newest; the others keep the one of their connection (a SignalR connection
 * token, a Socket.IO pid), so their tokens are not rotated
 */
export function rotatesTokens(dialect: string): boolean {
  return dialect === NATIVE_DIALECT;
}
