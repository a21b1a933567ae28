/**
 * The Socket.IO dialect: Socket.IO v5 on Engine.IO v4 (engineio.ts), for unchanged
 * socket.io-client 4 clients. Each namespace a client connects is its own session (its own
 * `open` and `close` in the app) on the one Engine.IO carrier; the app sees the same events,
 * acks and rooms as from native clients.
 *
 * - `socket.emit('x', a, b, cb)` → event `x`, args `[a, b]`, a reply for `cb`;
 * - `session.emit` → EVENT, with the session's seq as a last argument (the recovery offset);
 *   `session.request` → EVENT with an ack id, answered by the client's ACK;
 * - connection state recovery: `pid` is a signed resume key naming no node, the offset is a seq:
 *   a client that comes back (through any node) gets every missed entry once, in order.
 * @see ../../../docs/socketio.md
 */
import type { ClientFrame, Connection, OpenInfo, Port, PortSession } from '../../seam/port.ts';
import type { Entry } from '../../seam/entry.ts';
import { newCodecId } from '../../seam/entry.ts';
import type { SessionMeta } from '../../../cluster/types.ts';
import { EngineIoServer, EngineIoCarrier, type EngineIoRequest } from './engineio.ts';
import {
  ACK,
  CONNECT,
  CONNECT_ERROR,
  DISCONNECT,
  EVENT,
  SocketIoProtocolError,
  defaultParser,
  fastEvent,
  msgpackParser,
  nspPrefix,
  type SocketIoDecoder,
  type SocketIoPacket,
  type SocketIoParser,
} from './codec.ts';
import { parseLast } from '../../wires/query.ts';
import { warnOnce } from '../../../lib/log.ts';
import { errors } from '../../seam/errors.ts';
import { randomId } from '../../seam/ids.ts';
import type { SocketIoOptions } from './options.ts';

/** Counts of outbox entries encoded as packets (a broadcast's once per parser where its packets are the same for every member) */
export const encodeStats = { packets: 0 };

const DIALECT = 'socket.io';
/** close codes of the app's own `session.disconnect` (docs/errors.md) */
const APP_CODES = [4000, 4099] as const;
/** the auth of a CONNECT without a payload (shared: an object per session costs) */
const NO_AUTH: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/** Mounts the dialect on `port`. @returns the Engine.IO endpoint (to stop it) */
export function mountSocketIo(port: Port, o: SocketIoOptions): EngineIoServer {
  const cfg: SocketIoDialectConfig = {
    port,
    parser: o.parser === 'msgpack' ? msgpackParser : defaultParser,
    namespaces: new Set(o.namespaces),
    recovery: o.recovery,
    codec: newCodecId(),
  };
  return new EngineIoServer(
    port,
    {
      path: o.path,
      pingIntervalMs: o.pingIntervalMs,
      pingTimeoutMs: o.pingTimeoutMs,
      upgradeTimeoutMs: o.upgradeTimeoutMs,
      connectTimeoutMs: o.connectTimeoutMs,
      maxPayload: o.maxPayload,
    },
    (sid, info, transport, engine) => new SocketIoClient(sid, info, transport, engine, cfg),
  );
}

/** What every client of one endpoint shares */
interface SocketIoDialectConfig {
  readonly port: Port;
  readonly parser: SocketIoParser;
  readonly namespaces: Set<string>;
  readonly recovery: boolean;
  /** the cache slot of a broadcast's encoding (default parser) */
  readonly codec: number;
}

/** A Socket.IO client: its Engine.IO connection, and the namespaces it connected on it */
class SocketIoClient extends EngineIoCarrier {
  /** the namespace connections: `/` in a field of its own, others (rare) in a map made when needed */
  private main: SocketIoConnection | null = null;
  private others: Map<string, SocketIoConnection> | null = null;
  /** only while a binary packet waits for its attachments (or with the msgpack parser): text packets need no state */
  private decoder: SocketIoDecoder | null = null;
  /** a session was opened on this connection: the next one counts against the address's open rate (the handshake paid for the first) */
  private openedOne = false;

  constructor(
    sid: string,
    info: EngineIoRequest,
    transport: 'polling' | 'websocket',
    engine: EngineIoServer,
    readonly cfg: SocketIoDialectConfig,
  ) {
    super(sid, info, transport, engine);
  }

  get port(): Port {
    return this.cfg.port;
  }

  get recovery(): boolean {
    return this.cfg.recovery;
  }

  conn(nsp: string): SocketIoConnection | undefined {
    return (nsp === '/' ? this.main : this.others?.get(nsp)) ?? undefined;
  }

  /** namespace connections resumed through another node, and how each starts over if that fails */
  private relayedResumes: WeakMap<SocketIoConnection, () => void> | null = null;

  /**
   * A resume relayed to another node found no session (gone, or of another namespace): `c` gets
   * a new one, as a resume on this node would (recovered false). @returns whether it did
   */
  resumeLost(c: SocketIoConnection): boolean {
    const again = this.relayedResumes?.get(c);
    if (again === undefined || this.closed) return false;
    this.relayedResumes!.delete(c);
    c.resume = null;
    this.setConn(c.nsp, c);
    again();
    return true;
  }

  private setConn(nsp: string, c: SocketIoConnection): void {
    if (nsp === '/') this.main = c;
    else (this.others ??= new Map()).set(nsp, c);
  }

  /** Forgets `c` (if it is still its namespace's connection) */
  forget(c: SocketIoConnection): void {
    if (this.main === c) this.main = null;
    else if (this.others?.get(c.nsp) === c) this.others.delete(c.nsp);
  }

  protected override onUpgraded(): void {
    for (const c of this.conns()) if (c.session !== null) this.port.transportChanged(c.session);
  }

  private conns(): SocketIoConnection[] {
    const all: SocketIoConnection[] = this.main === null ? [] : [this.main];
    if (this.others !== null) all.push(...this.others.values());
    return all;
  }

  protected onMessage(data: string | Uint8Array): void {
    const parser = this.cfg.parser;
    // the common case first: an event for the main namespace
    if (typeof data === 'string' && data.charCodeAt(0) === 50 /* 2: EVENT */ && parser === defaultParser && this.decoder === null) {
      const s = this.main?.session;
      const f = s != null ? fastEvent(data) : null;
      if (f !== null) return this.deliver(s!, f);
    }
    let p: SocketIoPacket | null;
    const d = (this.decoder ??= parser.decoder());
    try {
      p = d.add(data);
    } catch (err) {
      if (!(err instanceof SocketIoProtocolError)) warnOnce('socket.io decode', err);
      // as the reference server: a packet it cannot parse closes the connection
      return this.close('parse error');
    }
    if (d.idle && parser === defaultParser) this.decoder = null;
    if (p !== null) this.sioPacket(p);
  }

  private sioPacket(p: SocketIoPacket): void {
    if (p.type === CONNECT) return this.connect(p.nsp, p.data as Record<string, unknown> | undefined);
    const conn = this.conn(p.nsp);
    const s = conn?.session;
    // a packet for a namespace not connected (or not yet accepted), a CONNECT_ERROR from a client,
    // an ACK without an id: the reference server closes the connection ("invalid state")
    if (
      conn === undefined ||
      (p.type !== DISCONNECT && (s === null || s === undefined)) ||
      p.type === CONNECT_ERROR ||
      (p.type === ACK && p.id === undefined)
    ) {
      return this.close('parse error');
    }
    if (p.type === DISCONNECT) return conn.clientClosed();
    let f: ClientFrame;
    if (p.type === EVENT) {
      const data = p.data as unknown[];
      f = { type: 'event', event: String(data[0]), args: data.slice(1) };
      if (p.id !== undefined) f.ack = p.id;
      if (p.raw !== undefined) f.raw = p.raw;
    } else {
      f = { type: 'reply', ack: p.id!, args: p.data as unknown[] };
    }
    this.deliver(s!, f);
  }

  private deliver(s: PortSession, f: ClientFrame): void {
    try {
      this.port.deliver(s, f);
    } catch (err) {
      // a bug of ours must cost this session, never the node
      warnOnce('error handling a socket.io packet', err);
      this.port.fail(s, 'SY_ERR_INTERNAL');
    }
  }

  /** CONNECT to namespace `nsp`: a new session, or (with `pid`) the one the client had */
  private connect(nsp: string, data: Record<string, unknown> | undefined): void {
    if (!this.cfg.namespaces.has(nsp)) return this.write(CONNECT_ERROR, nsp, undefined, { message: 'Invalid namespace' });
    this.connectDue = 0;
    // a CONNECT for a namespace already connected: the reference server closes the connection
    if (this.conn(nsp) !== undefined) return this.close('forced close');
    const auth: Record<string, unknown> = data === undefined ? NO_AUTH : { ...data };
    let pid: string | undefined;
    let offset: unknown;
    if (this.recovery && typeof auth.pid === 'string') {
      pid = auth.pid;
      offset = auth.offset;
      delete auth.pid;
      delete auth.offset;
    }
    // what the session keeps of its request (the handshake's query and user agent, this auth
    // payload) is bounded by maxRequestBytes, as every dialect's opening request is
    const bytes = (data === undefined ? 0 : JSON.stringify(data).length) + this.info.userAgent.length + queryBytes(this.info.query);
    const conn = new SocketIoConnection(this, nsp);
    this.setConn(nsp, conn);
    const meta = this.meta(nsp, auth);
    if (pid === undefined) return this.open(conn, meta, false, bytes);
    // before its first event a client has no offset: everything is missed
    const last = typeof offset === 'string' ? parseLast(offset) : 0;
    const port = this.port;
    port.resume(pid, last, (t) => {
      // the client left, or connected the namespace again, while the session was looked up
      if (this.conn(nsp) !== conn || this.closed) return;
      try {
        switch (t.kind) {
          case 'session':
            // a pid of another namespace names no session of this one
            if (t.session.meta.namespace !== nsp) break;
            // what the client may already have had: acks and requests there are not sent again
            conn.resume = { pid: pid!, sent: t.session.sent };
            conn.session = t.session;
            port.attach(t.session, conn, last, true);
            return;
          case 'remote':
            conn.resume = { pid: pid!, sent: 0 };
            // the holder may find no such session for this namespace: then a new one, as here
            (this.relayedResumes ??= new WeakMap()).set(conn, () => this.open(conn, meta, true, bytes));
            conn.session = port.attachRemote(t, meta, conn, last, false);
            return;
        }
        // gone (expired, ended, or its node crashed): a new session, and the client learns it
        this.open(conn, meta, true, bytes);
      } catch (err) {
        warnOnce('socket.io resume', err);
        this.close('internal error');
      }
    });
  }

  /** A new session for `conn`, if the node admits one (else the transport closes: the client retries, with backoff) */
  private open(conn: SocketIoConnection, meta: SessionMeta, resumeFailed: boolean, bytes: number): void {
    // every session counts against its address's rate of new sessions: the handshake that admitted
    // this connection paid for its first; a client that connects and disconnects namespaces in a
    // loop pays for each
    const ip = this.openedOne ? this.info.ip : '';
    this.openedOne = true;
    const refused = this.port.admit(this.info.origin, true, ip, bytes);
    if (refused === 'SY_ERR_REQUEST_TOO_LARGE') {
      // no retry would be smaller: the namespace is refused for good (the client's connect_error)
      this.forget(conn);
      return this.write(CONNECT_ERROR, conn.nsp, undefined, { message: errors.SY_ERR_REQUEST_TOO_LARGE.message });
    }
    if (refused !== null) return this.close('refused');
    conn.session = this.port.open(this.transport, meta, conn, resumeFailed);
  }

  private meta(nsp: string, auth: Record<string, unknown>): SessionMeta {
    const info = this.info;
    const meta: SessionMeta = { ip: info.ip, origin: info.origin, userAgent: info.userAgent, query: info.query, auth, dialect: DIALECT, namespace: nsp };
    // the session's meta has what the handshake told: keep it instead (one object less per client)
    this.info = meta;
    return meta;
  }

  /** Writes a packet the dialect makes (not an outbox entry) */
  write(type: number, nsp: string, id: number | undefined, data: unknown): void {
    const frames = this.cfg.parser.encode(type, nsp, id, data);
    this.cork(() => {
      for (const f of frames) this.send(typeof f === 'string' ? '4' + f : f);
    });
  }

  /** An outbox entry as Engine.IO messages (text ones with their `4`): one text message, or several */
  encode(nsp: string, seq: number, e: Entry): string | Array<string | Uint8Array> {
    const offset = this.recovery && e.kind === 'event' && e.ack === undefined;
    const parser = this.cfg.parser;
    if (parser === defaultParser && !e.binary) {
      const prefix = nspPrefix(nsp);
      if (e.kind === 'reply') {
        const err = e.error;
        return '43' + prefix + e.ack + (err === undefined ? e.json() : JSON.stringify([{ error: err }]));
      }
      let body = e.cached(this.cfg.codec) as string | undefined;
      if (body === undefined) {
        encodeStats.packets++;
        const json = e.json();
        body = '[' + JSON.stringify(e.event) + (json.length > 2 ? ',' + json.slice(1, -1) : '');
        if (e.shared) e.cache(this.cfg.codec, body);
      }
      return '42' + prefix + (e.ack === undefined ? '' : e.ack) + body + (offset ? ',"' + seq + '"]' : ']');
    }
    // a broadcast without an offset is the same packets for every member of a namespace: made
    // once (for the namespace of the member that asked first), and kept on the shared entry
    const same = e.shared && e.kind === 'event' && e.ack === undefined && !offset;
    if (same) {
      const had = e.cached(this.cfg.codec) as { nsp: string; frames: Array<string | Uint8Array> } | undefined;
      if (had !== undefined && had.nsp === nsp) return had.frames;
    }
    encodeStats.packets++;
    let frames: Array<string | Uint8Array>;
    if (e.kind === 'reply') {
      const err = e.error;
      frames = parser.encode(ACK, nsp, e.ack as number, err === undefined ? e.args : [{ error: err }]);
    } else {
      const data: unknown[] = [e.event, ...e.args];
      if (offset) data.push(String(seq));
      frames = parser.encode(EVENT, nsp, e.ack as number | undefined, data);
    }
    for (let i = 0; i < frames.length; i++) if (typeof frames[i] === 'string') frames[i] = '4' + (frames[i] as string);
    if (same && e.cached(this.cfg.codec) === undefined) e.cache(this.cfg.codec, { nsp, frames });
    return frames;
  }

  protected onWritable(): void {
    if (this.others === null) {
      const c = this.main;
      if (c !== null && c.session !== null && c.opened) c.flush(c.session);
      return;
    }
    for (const c of this.conns()) if (c.session !== null && c.opened) c.flush(c.session);
  }

  protected onClose(): void {
    // the transport is gone, not the sessions: each waits for its client to come back (recovery);
    // without recovery no client can come back to one: they end
    const conns = this.conns();
    this.main = null;
    this.others = null;
    for (const c of conns) {
      const s = c.session;
      c.session = null;
      if (s === null) continue;
      if (this.recovery) this.port.detach(s, c);
      else c.clientClosed(s);
    }
  }

  /** no namespace is connected */
  get empty(): boolean {
    return this.main === null && (this.others === null || this.others.size === 0);
  }
}

const OPENED = 1;
const GONE = 2;

/** One namespace of a Socket.IO client: one session on the client's carrier */
class SocketIoConnection implements Connection {
  session: PortSession | null = null;
  /** OPENED | GONE (one field: an idle connection costs every field it has) */
  private flags = 0;
  /**
   * connected with a `pid`: the pid the client sent (a recovered client gets exactly it back), and
   * how far the session had written (acks and requests up to there are not written again)
   */
  resume: { pid: string; sent: number } | null = null;

  constructor(
    private readonly client: SocketIoClient,
    readonly nsp: string,
  ) {}

  get transport(): 'polling' | 'websocket' {
    return this.client.transport;
  }

  /** CONNECT answered: entries may follow */
  get opened(): boolean {
    return (this.flags & OPENED) !== 0;
  }

  /** the namespace is over for this connection (the client disconnected it, or the session ended): nothing more is written */
  private get gone(): boolean {
    return (this.flags & GONE) !== 0;
  }

  get carrier(): EngineIoCarrier {
    return this.client;
  }

  sendOpen(s: PortSession, info: OpenInfo): void {
    this.flags |= OPENED;
    const data: { sid: string; pid?: string } = { sid: s.sid };
    if (this.client.recovery) {
      // a client takes `recovered` from getting back exactly the pid it sent: after a resume that
      // lost entries it gets another (still valid: a signed key with anything after a second dot)
      const pid = this.client.port.resumeKey(s.sid);
      const r = this.resume;
      data.pid = r === null ? pid : info.recovered === true ? r.pid : r.pid === pid ? pid + '.' + randomId(3) : pid;
    }
    this.client.write(CONNECT, this.nsp, undefined, data);
  }

  /** (a resume relayed to the holder) what it had written: acks and requests up to there are not written again */
  writtenBefore(seq: number): void {
    if (this.resume !== null && seq > this.resume.sent) this.resume.sent = seq;
  }

  flush(s: PortSession): void {
    if (!this.opened || this.gone) return;
    const c = this.client;
    if (!c.writable || s.sent >= s.outbox.last) return;
    // one entry: no cork (inside a uWS callback we are corked already; outside, one write either way)
    if (s.sent + 1 === s.outbox.last) this.write(s, false);
    else c.cork(() => this.write(s, false));
  }

  /** Writes entries after `s.sent`; `all`: even past a full buffer (they queue on the carrier) */
  private write(s: PortSession, all: boolean): void {
    const c = this.client;
    const box = s.outbox;
    const r = this.resume;
    let ok = true;
    while (ok || all) {
      if (s.sent >= box.last) break;
      const seq = s.sent + 1;
      const e = box.get(seq);
      s.sent = seq;
      if (e === undefined) continue;
      // a recovery replays from the last offset, which only events carry: acks and requests
      // written before are not written again (as socket.io, which keeps no acks for recovery)
      if (r !== null && seq <= r.sent && (e.kind === 'reply' || e.ack !== undefined)) continue;
      const f = c.encode(this.nsp, seq, e);
      if (typeof f === 'string') ok = c.send(f);
      else for (const part of f) ok = c.send(part);
    }
    if (r !== null && s.sent >= r.sent) this.resume = null;
    // without recovery there is no replay: written is delivered
    if (!c.recovery) c.port.acknowledge(s, s.sent);
  }

  end(s: PortSession, code: number, reason: string): void {
    this.session = null;
    this.forget();
    if (this.gone) return;
    // the node shuts down: the client must come back (elsewhere), so no DISCONNECT
    if (code === errors.SY_ERR_SHUTTING_DOWN.ws) return this.restart();
    const client = this.client;
    // a resume through another node that found nothing there: a new session, as a local one would
    if (!this.opened && code === errors.SY_ERR_UNKNOWN_SESSION.ws && client.resumeLost(this)) return;
    this.flags |= GONE;
    if (!this.opened) {
      // refused before it opened: the app's message (or why the gateway refused it)
      return client.write(CONNECT_ERROR, this.nsp, undefined, { message: reason });
    }
    client.cork(() => {
      this.write(s, true);
      // the app's disconnect: "io server disconnect", the client does not reconnect
      if (code >= APP_CODES[0] && code <= APP_CODES[1]) return client.write(DISCONNECT, this.nsp, undefined, undefined);
      // the gateway ended it (slow consumer, lost output, …): the transport closes, the client
      // reconnects and, finding the session gone, starts a new one (recovered false)
      client.close('server error');
    });
  }

  /** The client sent DISCONNECT for this namespace (or, without recovery, its transport closed) */
  clientClosed(s: PortSession | null = this.session): void {
    this.flags |= GONE;
    this.forget();
    this.session = null;
    if (s !== null) this.client.port.deliver(s, { type: 'close' });
  }

  drop(): void {
    // another connection took the session over: this namespace is no longer served here, and a
    // transport left with none is stale (its client came back on another)
    this.session = null;
    this.flags |= GONE;
    this.forget();
    if (this.client.empty) this.client.close('replaced');
  }

  restart(): void {
    // the node drains: the transport closes, never the namespace (no DISCONNECT: the client
    // reconnects, through another node, and recovers)
    this.client.close('server restart');
  }

  fail(): void {
    this.drop();
  }

  private forget(): void {
    this.client.forget(this);
  }
}

/** The bytes of a query a session keeps (its keys and values) */
function queryBytes(q: Record<string, string>): number {
  let n = 0;
  for (const k in q) n += k.length + q[k]!.length;
  return n;
}
