// Network timings of the page's own fetch and XMLHttpRequest calls: method, URL
// without its query string, status and duration. Never headers, never bodies.

import { bare, round, safe, W } from './util.js';

/** Wrap fetch and XMLHttpRequest; returns [the time they were wrapped (performance.now()),
 * report(kind, method, url, status, t0)], which early-network.js uses in a lazy chunk. */
export function recordNetwork(emit, own) {
  const perf = performance;
  const report = safe((kind, method, url, status, t0) => {
    if (!url.startsWith(own)) {
      emit('network', { event_data: { kind, method, url: bare(url), status, duration_ms: round(perf.now() - t0) } });
    }
  });

  const fetch0 = W.fetch;
  W.fetch = function (input, init) {
    const p = fetch0.apply(this, arguments);
    try {
      const url = String(input.url || input);
      const method = String((init && init.method) || input.method || 'GET').toUpperCase();
      const t0 = perf.now();
      // A side chain: the page gets the very promise fetch returned, untouched.
      p.then(
        (r) => report('fetch', method, url, r.status, t0),
        () => report('fetch', method, url, 0, t0),
      );
    } catch {}
    return p;
  };

  const X = XMLHttpRequest.prototype;
  const open0 = X.open;
  const send0 = X.send;
  X.open = function (method, url) {
    this.__hs = [String(method).toUpperCase(), String(url)];
    return open0.apply(this, arguments);
  };
  X.send = function () {
    const x = this;
    const t0 = perf.now();
    if (x.__hs) x.addEventListener('loadend', () => report('xhr', x.__hs[0], x.__hs[1], x.status, t0));
    return send0.apply(x, arguments);
  };
  return [perf.now(), report];
}
