/**
 * The session bus over NATS: the only file that imports the NATS client. Envelopes cross the
 * wire as msgpack maps. Several server URLs may be given; the client reconnects to another
 * server (forever, with a short wait) when one dies, and buffers what is published meanwhile.
 *
 * Guarantees (on top of the Bus contract): NATS delivers one connection's messages to one
 * subscription in publish order; delivery is at most once (a message published while no server
 * is reachable and the reconnect buffer is full is lost: the layers above retry what matters).
 */
import { connect, type NatsConnection, type Subscription as NatsSubscription } from 'nats';
import { MsgpackRefusedError, packr, unpackPlain } from '../lib/msgpack.ts';
import type { Bus, BusHandler, Envelope, Subscription } from './bus.ts';
import { log, warnOnce } from '../lib/log.ts';

/** NATS's default `max_payload`, until the server said its own */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/**
 * Nesting a message may have: args are nested at most 32 deep (MAX_DEPTH, checked where they
 * enter) and an envelope puts at most about 6 levels around them (a batch, a hand-over's session
 * state and its outbox entries); the rest is margin. Deeper is not ours: refused unread.
 */
export const BUS_MAX_DEPTH = 64;
/** several envelopes for one subject in one NATS message (wire detail of this bus only) */
const BATCH = '*';
const MAX_BATCH = 256;
interface Batch {
  t: typeof BATCH;
  e: Envelope[];
}

function deliver(handler: BusHandler, e: Envelope, subject: string): void {
  try {
    handler(e, subject);
  } catch (handlerErr) {
    log.error({ err: handlerErr, subject }, 'bus handler threw');
  }
}

export interface NatsBusOptions {
  /** NATS server URLs, e.g. ['nats://127.0.0.1:4222'] */
  servers: string[];
  /** connection name shown by the server's monitoring */
  name?: string;
  /** wait between reconnect attempts @default 250 */
  reconnectTimeWaitMs?: number;
  /** called on connection status changes (disconnect, reconnect…) */
  onStatus?: (status: string, data: unknown) => void;
}

export class NatsBus implements Bus {
  private closed = false;
  /**
   * Publishes of this turn of the event loop, in order; runs of envelopes to the same subject
   * become one NATS message (a batch), so order holds across subjects too (see publish).
   */
  private pending: Array<[string, Envelope[]]> = [];

  private constructor(readonly nc: NatsConnection) {}

  static async connect(o: NatsBusOptions): Promise<NatsBus> {
    const nc = await connect({
      servers: o.servers,
      name: o.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: o.reconnectTimeWaitMs ?? 250,
      // our own messages matter to us (a node can publish to a subject it also serves)
      noEcho: false,
      pingInterval: 5_000,
      maxPingOut: 2,
    });
    const bus = new NatsBus(nc);
    if (o.onStatus) {
      (async () => {
        for await (const s of nc.status()) o.onStatus!(s.type, s.data);
      })().catch(() => {});
    }
    return bus;
  }

  /**
   * Queues the message and hands the whole queue to the client once per event-loop turn. The
   * client itself coalesces writes per microtask, but a gateway publishes from many separate uWS
   * callbacks in one turn, each followed by a microtask checkpoint: that would be one socket write
   * per WebSocket message. setImmediate runs after the turn's I/O callbacks: one write for all.
   */
  publish(subject: string, envelope: Envelope): void {
    if (this.closed) return;
    const n = this.pending.length;
    if (n === 0) setImmediate(this.flushPending);
    else {
      const last = this.pending[n - 1]!;
      // e.g. a worker's outputs for one gateway, or one client's pipelined events
      if (last[0] === subject && last[1].length < MAX_BATCH) {
        last[1].push(envelope);
        return;
      }
    }
    this.pending.push([subject, [envelope]]);
  }

  private readonly flushPending = (): void => {
    const runs = this.pending;
    this.pending = [];
    if (this.closed) return;
    for (const [subject, envs] of runs) this.send(subject, envs);
  };

  /**
   * Publishes envelopes as one message, or as several when they are larger together than the
   * server's `max_payload` (NATS refuses a larger message: the client would throw). One envelope
   * larger than that alone cannot be sent: it is dropped, loudly (the at-least-once machinery above
   * resends what it tracks; nothing we send should be that large).
   */
  private send(subject: string, envs: Envelope[]): void {
    const data = packr.pack(envs.length === 1 ? envs[0] : { t: BATCH, e: envs });
    const max = this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    if (data.byteLength > max) {
      if (envs.length > 1) {
        const half = envs.length >> 1;
        this.send(subject, envs.slice(0, half));
        this.send(subject, envs.slice(half));
      } else {
        log.error({ subject, bytes: data.byteLength, maxPayload: max }, "a message is over the NATS server's max_payload: not sent");
      }
      return;
    }
    try {
      this.nc.publish(subject, data);
    } catch (err) {
      // the connection is closing or closed: what was in flight is resent by the layers above
      log.error({ err, subject }, 'publish failed');
    }
  }

  subscribe(subject: string, handler: BusHandler): Subscription {
    let sub: NatsSubscription | null = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null || sub === null) return;
        let e: Envelope | Batch;
        try {
          // plain msgpack only: anyone who can publish on the subject must not be able to make
          // this node expand shared references (see lib/msgpack.ts). An app's Dates and BigInts
          // pass: dropping the envelope for one would lose the whole output and end the session
          e = unpackPlain(msg.data, BUS_MAX_DEPTH, true) as Envelope | Batch;
        } catch (decodeErr) {
          // once per cause: whoever sends such messages may send many
          const refused = decodeErr instanceof MsgpackRefusedError;
          warnOnce(`bus: an undecodable message dropped (${refused ? decodeErr.message : 'msgpackr threw'})`, refused ? undefined : decodeErr, {
            subject: msg.subject,
            bytes: msg.data.byteLength,
          });
          return;
        }
        if (typeof e !== 'object' || e === null || ((e as Batch).t === BATCH && !Array.isArray((e as Batch).e))) {
          warnOnce('bus: a message that is not an envelope dropped', undefined, { subject: msg.subject });
          return;
        }
        if ((e as Batch).t !== BATCH) return deliver(handler, e as Envelope, msg.subject);
        // a handler may unsubscribe in the middle of a batch: stop there
        for (const one of (e as Batch).e) {
          if (sub === null) return;
          deliver(handler, one, msg.subject);
        }
      },
    });
    return {
      unsubscribe: () => {
        if (sub === null) return;
        if (!this.closed) sub.unsubscribe();
        sub = null;
      },
    };
  }

  /** Resolves when the server has processed everything published so far (a round trip) */
  async flush(): Promise<void> {
    this.flushPending();
    if (!this.closed) await this.nc.flush();
  }

  /** the server this bus is connected to now (for tests and health) */
  get server(): string {
    return this.nc.getServer();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushPending();
    this.closed = true;
    await this.nc.drain().catch(() => this.nc.close());
  }
}
