/**
 * A node's own HTTP endpoints: `/healthz` (liveness, and what the node holds), `/readyz` (503
 * while draining or saturated, so that a balancer sends new clients elsewhere), `/metrics`
 * (Prometheus text, prom-client loaded at the first scrape), and the answer to every other route.
 * The demo page and the browser clients are static.ts's.
 */
import type { TemplatedApp } from './uws.ts';
import { Exchange, retryHeaders, wantsClose } from '../transports/wires/http.ts';
import { warnOnce } from '../lib/log.ts';
import { metricsRegistry, type MetricsSource } from './metrics.ts';

/** What the probes need of their node */
export interface ProbesHost extends MetricsSource {
  /** what `/healthz` says */
  health(): Record<string, unknown>;
  /** why the node should get no new clients now, or null */
  unready(): string | null;
}

/** `/healthz`, `/readyz` and (`metrics`) `/metrics` on `app` */
export function mountProbes(app: TemplatedApp, host: ProbesHost, metrics: boolean): void {
  // liveness: 200 as long as the node serves at all (draining or saturated included)
  app.get('/healthz', (res, req) => {
    new Exchange(res, '', wantsClose(req)).reply(200, 'application/json', JSON.stringify(host.health()));
  });
  // readiness: 503 while draining or at the session limit, so a balancer sends new clients elsewhere
  app.get('/readyz', (res, req) => {
    const why = host.unready();
    const ex = new Exchange(res, '', wantsClose(req));
    if (why === null) ex.reply(200, 'application/json', '{"ready":true}');
    else ex.reply(503, 'application/json', JSON.stringify({ ready: false, reason: why }), retryHeaders(503));
  });
  if (!metrics) return;
  let registry: ReturnType<typeof metricsRegistry> | null = null;
  app.get('/metrics', (res, req) => {
    const ex = new Exchange(res, '', wantsClose(req));
    (registry ??= metricsRegistry(host))
      .then(async (r) => [r.contentType, await r.metrics()] as const)
      .then(
        ([type, text]) => ex.reply(200, type, text),
        (err) => {
          warnOnce('metrics', err);
          ex.error('SY_ERR_INTERNAL');
        },
      );
  });
}

/** Every other route of `app`: a preflight gets 204, anything else SY_ERR_NOT_FOUND */
export function notFound(app: TemplatedApp): void {
  app.any('/*', (res, req) => {
    const ex = new Exchange(res, '', wantsClose(req));
    if (req.getMethod() === 'options') ex.reply(204, null);
    else ex.error('SY_ERR_NOT_FOUND');
  });
}
