// Screenshots: after each page view, once the page has loaded and the browser is idle,
// the lazy chunk (html2canvas, from the same server as tracker.js) renders the page.

import { D, safe, W } from './util.js';

export function createScreenshots(cfg, upload) {
  let timer = 0;
  let lib = null;
  let busy = false;

  const load = () =>
    (lib =
      lib ||
      new Promise((resolve) => {
        const s = D.createElement('script');
        s.src = cfg.base + '/tracker/' + CAPTURE_CHUNK; // eslint-disable-line no-undef
        s.async = true;
        s.onload = () => resolve((W.__hindsightCapture || {}).default);
        s.onerror = () => resolve(null);
        (D.head || D.documentElement).appendChild(s);
      }));

  async function capture() {
    if (busy || D.visibilityState === 'hidden') return;
    busy = true;
    try {
      const run = await load();
      const page = cfg.pageUrl();
      const shot = run && (await run(cfg));
      // Navigated meanwhile: that page view schedules its own screenshot.
      if (shot && page === cfg.pageUrl()) {
        shot.session_id = cfg.sessionId();
        shot.page_url = page;
        shot.timestamp = new Date().toISOString();
        upload(shot);
      }
    } catch (e) {
      // a page html2canvas cannot render: no screenshot, nothing else changes
    }
    busy = false;
  }

  return {
    /** After a page view: wait for the page to settle, then capture when the browser is idle. */
    schedule_() {
      clearTimeout(timer);
      if (D.readyState !== 'complete') {
        W.addEventListener('load', safe(() => this.schedule_()), { once: true });
        return;
      }
      timer = setTimeout(
        safe(() => (W.requestIdleCallback || setTimeout)(safe(capture), { timeout: 3000 })),
        800,
      );
    },
  };
}
