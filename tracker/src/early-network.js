// Requests the page made before tracker.js wrapped fetch and XMLHttpRequest (an async
// script starts after the page's first requests): the browser buffers their resource
// timings, so the first lazy chunk to run (DOM recording or screenshots) reports them.
// They carry no method (resource timings do not know it), and their status only where the
// browser exposes it (responseStatus: Chromium 109+, Firefox 111+; 0 elsewhere).

/** cfg.network: [the time fetch was wrapped, report(kind, method, url, status, t0)] from
 * network.js; taken once, by whichever chunk comes first. */
export function reportEarlyNetwork(cfg) {
  const [wrapped, report] = cfg.network || [];
  cfg.network = 0;
  if (!report) return;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = e.initiatorType;
        // Later ones went through the wrappers (which know their method).
        if (e.startTime < wrapped && (kind == 'fetch' || kind == 'xmlhttprequest')) {
          report(kind == 'fetch' ? kind : 'xhr', null, e.name, e.responseStatus || 0, performance.now() - e.duration);
        }
      }
    }).observe({ type: 'resource', buffered: true });
  } catch {
    // no PerformanceObserver: those requests stay unrecorded
  }
}
