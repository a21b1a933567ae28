/**
 * A soak: many sessions of the bundled client in rooms, requests and room messages flowing,
 * connections dropped at random and resumed, for a while; then every answered message is checked
 * to have reached every member of its room exactly once and in order, and the gateway's memory
 * at the end is compared with the start. Used by test/soak.test.ts (short) and `npm run soak`.
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { connect } from '../client/switchyard.js';

export interface SoakOptions {
  /** the gateways (client i connects to the (i mod n)th), or a load balancer */
  urls: string[];
  /** the gateway processes' pids, for their memory (RSS from /proc) */
  pids: number[];
  sessions: number;
  roomSize: number;
  seconds: number;
  /** each client's pause between two requests (an echo, then a room message, in turn) */
  everyMs: number;
  /** one random client's connection is dropped this often */
  dropEveryMs: number;
  log?: (line: string) => void;
}

export interface SoakResult {
  sessions: number;
  seconds: number;
  requests: number;
  /** requests that got their answer, and that answer was right */
  answered: number;
  /** requests with no answer (upstream frames a dropped WebSocket had written are not resent: docs/client.md) */
  unanswered: number;
  wrongAnswers: number;
  /** room messages whose request was answered: each must reach every member */
  says: number;
  deliveries: number;
  expectedDeliveries: number;
  missing: number;
  duplicates: number;
  outOfOrder: number;
  drops: number;
  /** opens after a drop that came back with recovered: false (the session was lost) */
  lostSessions: number;
  rssStartBytes: number;
  rssEndBytes: number;
}

const rssOf = (pids: number[]) => pids.reduce((n, pid) => n + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024, 0);

export async function soak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? (() => {});
  const rooms = Math.max(1, Math.ceil(o.sessions / o.roomSize));
  type Client = ReturnType<typeof connect>;
  const clients: Client[] = [];
  /** per receiving client: per sender, the message numbers received, in order */
  const got: Array<Map<number, number[]>> = [];
  let lostSessions = 0;
  for (let i = 0; i < o.sessions; i++) {
    const c = connect(o.urls[i % o.urls.length]!, {
      transports: ['websocket'],
      WebSocket,
      rememberTransport: false,
      minDelayMs: 20,
      maxDelayMs: 300,
      ackTimeoutMs: 15_000,
    });
    const mine = new Map<number, number[]>();
    got.push(mine);
    let opened = false;
    c.on('open', (info: { recovered: boolean }) => {
      if (opened && !info.recovered) lostSessions++;
      opened = true;
    });
    c.on('said', (_room: string, text: string) => {
      const [from, n] = text.split(':').map(Number) as [number, number];
      let list = mine.get(from);
      if (list === undefined) mine.set(from, (list = []));
      list.push(n);
    });
    clients.push(c);
  }
  await Promise.all(clients.map((c, i) => c.request('join', `soak-${i % rooms}`)));
  log(`soak: ${o.sessions} sessions in ${rooms} rooms of ${o.roomSize}`);
  await new Promise((r) => setTimeout(r, 1000));
  const rssStart = rssOf(o.pids);

  let requests = 0;
  let answered = 0;
  let unanswered = 0;
  let wrong = 0;
  /** per sender: the room message numbers whose request was answered */
  const sent: number[][] = clients.map(() => []);
  let running = true;
  const loops = clients.map(async (c, i) => {
    await new Promise((r) => setTimeout(r, Math.random() * o.everyMs));
    for (let k = 0; running; k++) {
      requests++;
      try {
        if (k % 2 === 0) {
          const r = await c.request('echo', i, k);
          if (r[0] === i && r[1] === k) answered++;
          else wrong++;
        } else {
          await c.request('say', `soak-${i % rooms}`, `${i}:${k}`);
          answered++;
          sent[i]!.push(k);
        }
      } catch {
        unanswered++;
      }
      await new Promise((r) => setTimeout(r, o.everyMs * (0.5 + Math.random())));
    }
  });
  let drops = 0;
  const dropper = setInterval(() => {
    clients[Math.floor(Math.random() * clients.length)]!.drop('soak');
    drops++;
  }, o.dropEveryMs);
  const started = Date.now();
  const progress = setInterval(
    () => log(`soak: ${Math.round((Date.now() - started) / 1000)} s, ${requests} requests, ${drops} drops, RSS ${Math.round(rssOf(o.pids) / 1e6)} MB`),
    10_000,
  );
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  running = false;
  clearInterval(dropper);
  clearInterval(progress);
  await Promise.all(loops);

  // every answered room message reaches each member of its room: wait for the last ones
  const expectedFor = (receiver: number) => {
    let n = 0;
    for (let s = 0; s < clients.length; s++) if (s % rooms === receiver % rooms) n += sent[s]!.length;
    return n;
  };
  const deliveredTo = (receiver: number) => {
    let n = 0;
    for (const list of got[receiver]!.values()) n += list.length;
    return n;
  };
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && clients.some((_c, r) => deliveredTo(r) < expectedFor(r))) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 500));
  const rssEnd = rssOf(o.pids);

  let says = 0;
  let deliveries = 0;
  let expected = 0;
  let missing = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  for (let s = 0; s < clients.length; s++) says += sent[s]!.length;
  for (let r = 0; r < clients.length; r++) {
    for (let s = 0; s < clients.length; s++) {
      if (s % rooms !== r % rooms) continue;
      const want = sent[s]!;
      const have = got[r]!.get(s) ?? [];
      expected += want.length;
      deliveries += have.length;
      const seen = new Set<number>();
      let prev = -1;
      for (const n of have) {
        if (seen.has(n)) duplicates++;
        seen.add(n);
        if (n < prev) outOfOrder++;
        prev = n;
      }
      for (const n of want) if (!seen.has(n)) missing++;
    }
  }
  for (const c of clients) c.close();
  return {
    sessions: o.sessions,
    seconds: o.seconds,
    requests,
    answered,
    unanswered,
    wrongAnswers: wrong,
    says,
    deliveries,
    expectedDeliveries: expected,
    missing,
    duplicates,
    outOfOrder,
    drops,
    lostSessions,
    rssStartBytes: rssStart,
    rssEndBytes: rssEnd,
  };
}
