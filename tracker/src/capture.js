// The lazy screenshot chunk: html2canvas plus the code that decides and drives it.
// tracker.js loads it from the same server once a page view has settled and the browser
// is idle, so the core stays small.
//
// With DOM recording on, the recording is the replay: a screenshot is only a heatmap
// background or a thumbnail, so a session takes one per distinct page (path and hash
// route, pageKey) and viewport width, and only when the server has no fresh one of that page for
// that device class (GET /api/v1/track/screenshot/wanted). With recording off, one per page
// view (an identical one is not sent).

import html2canvas from 'html2canvas';
import { reportEarlyNetwork } from './early-network.js';
import { configureMasking, maskClone } from './mask.js';
import { selector } from './recorder.js';
import { load, LS, save, SS } from './util.js';

const MAX_HEIGHT = 6000; // CSS pixels of a long page that are captured
// Elements whose place is sent with a screenshot (heatmaps draw a click on its element):
// what is clicked first (links, buttons, fields...), then the others in document order.
const CLICKABLE = 'a,button,input,select,textarea,label,summary,[role],[onclick],[tabindex]';
const MAX_ELEMENTS = 500; // schemas.MAX_SCREENSHOT_ELEMENTS
const MAX_LOOKED_AT = 3000; // elements looked at, on a very large page
const MAX_MS = 40; // and never longer than this: what is measured by then is sent
let previous = '';
let busy = false;

/** FNV-1a over a string: a cheap fingerprint to skip identical screenshots. */
function fingerprint(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36) + s.length;
}

/** Where the page's elements are (CSS px of the page, as on the screenshot, `height` tall):
 * [{selector, x, y, width, height}], the selectors computed as click events compute theirs
 * (recorder.js). An element whose selector another visible element shares is left out (a
 * click on either could not be told apart), and so are invisible ones. Bounded: 500 boxes,
 * 3,000 elements looked at, 40 ms (a selector costs a scan of its element's siblings: on a
 * list of thousands, that is what runs out first). */
export function elementBoxes(height) {
  const body = document.body;
  if (!body) return [];
  const found = new Map(); // selector -> box, or 0 when ambiguous
  const looked = new Set();
  let kept = 0;
  const until = performance.now() + MAX_MS;
  for (const el of [...body.querySelectorAll(CLICKABLE), ...body.querySelectorAll('*')]) {
    if (kept >= MAX_ELEMENTS || looked.size >= MAX_LOOKED_AT || performance.now() > until) break;
    if (looked.has(el)) continue;
    looked.add(el);
    const r = el.getBoundingClientRect();
    const x = Math.round(r.left + scrollX);
    const y = Math.round(r.top + scrollY);
    if (r.width < 1 || r.height < 1 || y >= height || y + r.height <= 0) continue;
    const s = selector(el);
    if (!s || s.length > 1024) continue;
    if (found.has(s)) {
      if (found.get(s)) kept--;
      found.set(s, 0);
      continue;
    }
    found.set(s, { selector: s, x, y, width: Math.round(r.width), height: Math.round(r.height) });
    kept++;
  }
  return [...found.values()].filter(Boolean);
}

/** Render the page with `options` {format, quality, maxWidth} and tracker.js's masking
 * options; resolve to {image_data, width, height}, or null when identical to the last one. */
export async function shoot(cfg, options) {
  configureMasking(cfg);
  const root = document.documentElement;
  const width = root.clientWidth || innerWidth;
  const height = Math.min(MAX_HEIGHT, Math.max(root.scrollHeight, document.body ? document.body.scrollHeight : 0, innerHeight));
  const canvas = await html2canvas(root, {
    scale: Math.min(1, options.maxWidth / width),
    width,
    height,
    windowWidth: width,
    windowHeight: innerHeight,
    x: 0,
    y: 0,
    scrollX: 0,
    scrollY: 0,
    logging: false,
    backgroundColor: '#ffffff',
    onclone: maskClone,
    ignoreElements: (el) => el.hasAttribute && el.hasAttribute('data-hindsight-ignore'),
  });
  const data = canvas.toDataURL('image/' + options.format, options.quality);
  const print = fingerprint(data);
  if (print === previous || data.length < 32) return null;
  previous = print;
  // The declared size is the image's real pixel size (the API checks it).
  return { image_data: data, width: canvas.width, height: canvas.height, elements: elementBoxes(height) };
}

/** Whether the server lacks a fresh screenshot of this page for this device class (with DOM
 * recording on, a screenshot is only a heatmap background: one per page and freshness
 * period is enough). Unknown (offline, refused): take it. */
async function wanted(cfg, page, again) {
  // A site the server refused (tracker.js stays quiet until the refusal's time is up): no
  // question and no picture.
  if (load(LS, 'hs:' + cfg.account + ':b') > Date.now()) return false;
  try {
    const r = await fetch(
      (cfg.get('endpoint') || cfg.base).replace(/\/+$/, '') + '/api/v1/track/screenshot/wanted?session_id=' + cfg.sessionId() + '&page_url=' + encodeURIComponent(page),
      { credentials: 'omit', cache: 'no-store' },
    );
    const answer = r.ok ? await r.json() : {};
    if (answer.known === false && !again) {
      // A visit's first page: the session is created by the first batch, at the latest one
      // delivery interval from now. Ask again then.
      await new Promise((done) => setTimeout(done, cfg.num('flush-interval', 5000, 250, 60000) + 1000));
      return wanted(cfg, page, 1);
    }
    return answer.wanted !== false;
  } catch {
    return true;
  }
}

/** The page a location is, as the server's hindsight_url_path says (sql/migrations/0029): its
 * path, plus its hash route (a fragment starting with / or !/, without the route's query);
 * an anchor is its page. */
export const pageKey = (loc) => loc.pathname + ((/^#!?\/[^?#]+/.exec(loc.hash) || [''])[0]);

/** tracker.js's entry: take this page view's screenshot, if one is wanted, and hand it to
 * `upload` (the transport's outbox) as [session_id, path, JSON body, 0].
 * cfg: tracker.js's options plus sessionId(), active(), get(), num(). */
export default async function capture(cfg, upload) {
  reportEarlyNetwork(cfg);
  const here = () => location.href.slice(0, 2048); // the page_url of tracker.js's events
  const page = here();
  const seenKey = 'hs:' + cfg.account + ':p'; // sessionStorage: {i: session id, k: [page keys]}
  const key = pageKey(location) + ' ' + innerWidth;
  const seen = load(SS, seenKey) || {};
  const keys = seen.i == cfg.sessionId() ? seen.k : [];
  if (busy || document.visibilityState === 'hidden' || (cfg.record && keys.includes(key))) return;
  busy = true;
  try {
    const shot = cfg.record && !(await wanted(cfg, page)) ? null : await shoot(cfg, {
      format: cfg.get('screenshot-format') == 'webp' ? 'webp' : 'jpeg',
      quality: cfg.num('screenshot-quality', 0.6, 0.05, 1),
      maxWidth: cfg.num('screenshot-max-width', 1024, 64, 4096),
    });
    // Navigated meanwhile: that page view schedules its own screenshot.
    if (page === here()) {
      save(SS, seenKey, { i: cfg.sessionId(), k: keys.concat(key).slice(-100) });
      if (shot && cfg.active()) {
        shot.session_id = cfg.sessionId();
        shot.page_url = page;
        shot.timestamp = new Date().toISOString();
        upload([shot.session_id, '/api/v1/track/screenshot', JSON.stringify(shot), 0], 1);
      }
    }
  } catch {
    // a page html2canvas cannot render: no screenshot, nothing else changes
  }
  busy = false;
}
