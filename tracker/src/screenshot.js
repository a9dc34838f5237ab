// Screenshots: 800 ms after each page view, the lazy chunk (capture.js with html2canvas,
// from the same server as tracker.js) is loaded; it waits for the page to load and the
// browser to be idle, then decides and takes the screenshot.

import { loadChunk, safe } from './util.js';

export const createScreenshots = (cfg, upload) => ({
  /** After a page view. */
  schedule_: () => setTimeout(safe(() => loadChunk(cfg.base, CAPTURE_CHUNK, '__hindsightCapture').then((run) => run && run(cfg, upload))), 800), // eslint-disable-line no-undef
});
