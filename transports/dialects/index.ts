/**
 * The dialects a node serves, in one list. The gateway mounts what this registry gives it, reads
 * their options, flags and demo-page needs through it, and names no dialect itself: a fifth
 * dialect is a folder beside these (its codec.ts and dialect.ts, with a `mount…` function, and
 * options.ts if it has options) and an entry here (docs/architecture.md, "Adding a fifth dialect").
 */
import type { Port } from '../seam/port.ts';
import type { DialectFlag, NodeDefaults } from '../seam/options.ts';
import { NATIVE_DIALECT } from './native/codec.ts';
import { mountNative } from './native/dialect.ts';
import { mountSocketIo } from './socketio/dialect.ts';
import { resolveSocketIo, socketIoFlags, type SocketIoConfig, type SocketIoOptions } from './socketio/options.ts';
import { mountSignalR } from './signalr/dialect.ts';
import { resolveSignalR, signalRFlags, type SignalRConfig, type SignalROptions } from './signalr/options.ts';
import { mountSockJs } from './sockjs/dialect.ts';
import { resolveSockJs, sockJsFlags, type SockJsConfig, type SockJsOptions } from './sockjs/options.ts';

export type { SignalRConfig, SignalROptions, SocketIoConfig, SocketIoOptions, SockJsConfig, SockJsOptions };

/** Each configurable dialect's options as a node is given them (under its key); false: not served; absent: served with its defaults */
export interface DialectConfigs {
  /** the Socket.IO dialect (Engine.IO v4 / Socket.IO v5 clients); false: not served @default {} (served at /socket.io/) */
  socketio?: SocketIoConfig | false;
  /** the SignalR dialect (@microsoft/signalr clients); false: not served @default {} (hub `demo` at /hubs/demo) */
  signalr?: SignalRConfig | false;
  /** the SockJS dialect (sockjs-client); false: not served @default {} (at /sockjs) */
  sockjs?: SockJsConfig | false;
}

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

/** What the demo page needs of a dialect: where it is served, and the scripts it loads */
interface PageNeeds {
  /** where this node serves it (the page's `switchyard-paths`), or null */
  endpoint: string | null;
  /** a script tag of the page (by its default src) and where it is loaded from now (null: left out) */
  scripts: Array<{ src: string; now: string | null }>;
}

/** One dialect: its routes, its options and flags, what the demo page needs of it */
interface Dialect<C = unknown, O = unknown> {
  /** its key in the options (GatewayOptions[key], the config file) and its flags' prefix; none: no options */
  readonly key?: keyof DialectConfigs;
  readonly flags?: readonly DialectFlag[];
  /** resolves its options (defaults, checks: a TypeError names the option) */
  resolve?(c: C, node: NodeDefaults): O;
  /** third-party browser bundles the demo page loads, served at /vendor/<name>: name → file of an installed package */
  readonly vendor?: Readonly<Record<string, string>>;
  page?(o: O | false): PageNeeds;
  /** mounts its routes on the node's app; null when its options turn it off */
  mount(port: Port, o: O | false): MountedDialect | null;
}

function dialect<C, O>(d: Dialect<C, O>): Dialect {
  return d as Dialect;
}

const DIALECTS: readonly Dialect[] = [
  dialect({
    mount(port) {
      mountNative(port);
      return { name: 'native' };
    },
  }),
  dialect<SocketIoConfig, SocketIoOptions>({
    key: 'socketio',
    flags: socketIoFlags,
    resolve: resolveSocketIo,
    vendor: { 'socket.io.min.js': 'socket.io-client/dist/socket.io.min.js' },
    page: (o) => ({ endpoint: o === false ? null : o.path, scripts: [] }),
    mount(port, o) {
      if (o === false) return null;
      const engine = mountSocketIo(port, o);
      return { name: 'socketio', endpoint: engine, stats: () => engine.stats(), stop: () => engine.stop() };
    },
  }),
  dialect<SignalRConfig, SignalROptions>({
    key: 'signalr',
    flags: signalRFlags,
    resolve: resolveSignalR,
    vendor: {
      'signalr.min.js': '@microsoft/signalr/dist/browser/signalr.min.js',
      'signalr-protocol-msgpack.min.js': '@microsoft/signalr-protocol-msgpack/dist/browser/signalr-protocol-msgpack.min.js',
    },
    page: (o) => ({ endpoint: o === false || o.hubs.length === 0 ? null : `/hubs/${o.hubs[0]}`, scripts: [] }),
    mount(port, o) {
      if (o === false) return null;
      const sr = mountSignalR(port, o);
      return { name: 'signalr', endpoint: sr, stats: () => sr.stats(), stop: () => sr.stop() };
    },
  }),
  dialect<SockJsConfig, SockJsOptions>({
    key: 'sockjs',
    flags: sockJsFlags,
    resolve: resolveSockJs,
    // sockjs-client's bundle is served by the dialect itself, at <prefix>/sockjs.min.js
    page: (o) => ({
      endpoint: o === false ? null : o.prefix,
      scripts: [{ src: '/sockjs/sockjs.min.js', now: o === false ? null : `${o.prefix}/sockjs.min.js` }],
    }),
    mount(port, o) {
      if (o === false) return null;
      mountSockJs(port, o);
      return { name: 'sockjs' };
    },
  }),
];

/** Each dialect's options, resolved from what the node was given (absent: its defaults; false: off) */
export function resolveDialects(given: DialectConfigs, node: NodeDefaults): DialectOptions {
  const out: Record<string, unknown> = {};
  for (const d of DIALECTS) {
    if (d.key === undefined) continue;
    const c = given[d.key];
    out[d.key] = c === false ? false : d.resolve!(c ?? {}, node);
  }
  return out as unknown as DialectOptions;
}

/** Every dialect's command-line flags, each with the option path it sets (`<key>` or `<key>.<field>`) */
export function dialectFlags(): Array<DialectFlag & { path: string }> {
  return DIALECTS.flatMap((d) => (d.key === undefined ? [] : (d.flags ?? []).map((f) => ({ ...f, path: f.to === '' ? d.key! : `${d.key}.${f.to}` }))));
}

/** The third-party browser bundles the demo page loads: /vendor/<name> → file of an installed package */
export function vendorFiles(): Record<string, string> {
  return Object.assign({}, ...DIALECTS.map((d) => d.vendor ?? {}));
}

/** What the demo page needs of the node's dialects: where each is served (by key), and its script tags */
export function pageNeeds(o: DialectOptions): { endpoints: Record<string, string | null>; scripts: PageNeeds['scripts'] } {
  const endpoints: Record<string, string | null> = {};
  const scripts: PageNeeds['scripts'] = [];
  for (const d of DIALECTS) {
    if (d.key === undefined || d.page === undefined) continue;
    const p = d.page(o[d.key]);
    endpoints[d.key] = p.endpoint;
    scripts.push(...p.scripts);
  }
  return { endpoints, scripts };
}

/** Mounts every dialect the options turn on, in a fixed order (native first) */
export function mountDialects(port: Port, o: DialectOptions): MountedDialect[] {
  const out: MountedDialect[] = [];
  for (const d of DIALECTS) {
    const m = d.mount(port, d.key === undefined ? false : o[d.key]);
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
