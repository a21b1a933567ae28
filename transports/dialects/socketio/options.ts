/** The Socket.IO dialect's options: what a node is given, how it resolves, its flags (see docs/socketio.md) */
import { checkInt, stripUndefined, type DialectFlag, type NodeDefaults } from '../../seam/options.ts';

/** The Socket.IO dialect's options, as given (GatewayOptions.socketio) */
export interface SocketIoConfig {
  /** @default '/socket.io/' */
  path?: string;
  /** namespaces clients may connect @default ['/'] */
  namespaces?: string[];
  /** Engine.IO `pingInterval` @default the node's pingMs (25000) */
  pingIntervalMs?: number;
  /** Engine.IO `pingTimeout` @default 20000 */
  pingTimeoutMs?: number;
  /** a client that connects no namespace within this is closed @default 45000 */
  connectTimeoutMs?: number;
  /** @default 10000 */
  upgradeTimeoutMs?: number;
  /** connection state recovery (`pid`, offsets appended to events) @default true */
  recovery?: boolean;
  /** `msgpack`: socket.io-msgpack-parser (clients must use it too) @default 'default' */
  parser?: 'default' | 'msgpack';
}

/** The Socket.IO dialect's options, resolved */
export interface SocketIoOptions {
  /** @default '/socket.io/' */
  path: string;
  /** namespaces clients may connect; others get CONNECT_ERROR "Invalid namespace" @default ['/'] */
  namespaces: string[];
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** a client that connects no namespace within this is closed @default 45000 */
  connectTimeoutMs: number;
  /** @default 10000 */
  upgradeTimeoutMs: number;
  /** connection state recovery: `pid` and offsets @default true */
  recovery: boolean;
  /** the packet parser clients use: both sides must agree @default 'default' */
  parser: 'default' | 'msgpack';
  maxPayload: number;
}

export function resolveSocketIo(c: SocketIoConfig, node: NodeDefaults): SocketIoOptions {
  const s: SocketIoOptions = {
    path: '/socket.io/',
    namespaces: ['/'],
    pingIntervalMs: node.pingMs,
    pingTimeoutMs: 20_000,
    connectTimeoutMs: 45_000,
    upgradeTimeoutMs: 10_000,
    recovery: true,
    parser: 'default',
    ...stripUndefined(c),
    maxPayload: node.maxPayloadBytes,
  };
  for (const k of ['pingIntervalMs', 'pingTimeoutMs', 'connectTimeoutMs', 'upgradeTimeoutMs'] as const) checkInt(`socketio.${k}`, s[k], 10);
  if (!s.path.startsWith('/') || !s.path.endsWith('/')) throw new TypeError(`option socketio.path must start and end with '/', got ${s.path}`);
  for (const n of s.namespaces)
    if (!n.startsWith('/') || n.includes(',')) throw new TypeError(`option socketio.namespaces: ${JSON.stringify(n)} must start with '/' and hold no ','`);
  if (s.parser !== 'default' && s.parser !== 'msgpack') throw new TypeError(`option socketio.parser must be 'default' or 'msgpack', got ${String(s.parser)}`);
  return s;
}

export const socketIoFlags: DialectFlag[] = [
  { flag: 'no-socketio', kind: { t: 'flag' }, sets: false, to: '', def: 'served', help: 'Socket.IO clients are not served' },
  {
    flag: 'socketio-path',
    kind: { t: 'string', pattern: /^\/.*\/$/, form: "a path starting and ending with '/'" },
    to: 'path',
    def: '/socket.io/',
    help: 'Socket.IO path',
  },
  { flag: 'socketio-namespaces', kind: { t: 'list' }, to: 'namespaces', def: '/', help: 'namespaces clients may connect, comma-separated' },
  { flag: 'socketio-parser', kind: { t: 'enum', values: ['default', 'msgpack'] }, to: 'parser', def: 'default', help: 'msgpack: socket.io-msgpack-parser' },
  { flag: 'socketio-ping-timeout-ms', kind: { t: 'int', min: 10 }, to: 'pingTimeoutMs', def: '20000', help: 'Engine.IO pingTimeout' },
  {
    flag: 'socketio-connect-timeout-ms',
    kind: { t: 'int', min: 10 },
    to: 'connectTimeoutMs',
    def: '45000',
    help: 'a client that connects no namespace within this is closed',
  },
  {
    flag: 'socketio-no-recovery',
    kind: { t: 'flag' },
    sets: false,
    to: 'recovery',
    def: 'recovery on',
    help: 'no connection state recovery (no pid, no offsets)',
  },
];
