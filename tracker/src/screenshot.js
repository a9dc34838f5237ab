// Screenshots: after each page view, once the page has loaded and the browser is idle,
// the lazy chunk (capture.js with html2canvas, from the same server as tracker.js) is
// loaded and decides and takes the screenshot.

import { D, loadChunk, safe, W } from './util.js';

export function createScreenshots(cfg, upload) {
  let timer = 0;
  const capture = () =>
    loadChunk(cfg.base, CAPTURE_CHUNK, '__hindsightCapture').then((run) => run && run(cfg, upload)); // eslint-disable-line no-undef

  return {
    /** After a page view: once the page has loaded and settled (800 ms), capture when the browser is idle. */
    schedule_() {
      clearTimeout(timer);
      timer = setTimeout(
        safe(() => (D.readyState != 'complete' ? this.schedule_() : (W.requestIdleCallback || setTimeout)(safe(capture), { timeout: 3000 }))),
        800,
      );
    },
  };
}
