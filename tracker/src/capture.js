// The lazy screenshot chunk: html2canvas plus the code that decides and drives it.
// tracker.js loads it from the same server 800 ms after a page view; it waits for the page's
// load and an idle moment itself (settled()), so the core stays small.
//
// With DOM recording on, the recording is the replay: a screenshot is only a heatmap
// background or a thumbnail, so a session takes one per distinct page (path and hash
// route, pageKey) and viewport width, and only when the server has no fresh one of that page for
// that device class (GET /api/v1/track/screenshot/wanted). With recording off, one per page
// view (an identical one is not sent).
//
// No long task: html2canvas's own entry (`html2canvas()`) clones, parses, paints and returns
// in two tasks of 60-230 ms each on the demo SPA. Its stages are driven here one by one (the
// same classes, from html2canvas's per-module build), with the event loop let through between
// them: clone | a new iframe | the copy into it | masking | parse | paint (in slices of SLICE
// ms, between elements) | encode (canvas.toBlob, asynchronous) | element boxes. See docs/DECISIONS.md
// "Screenshots without long tasks".

import { Bounds } from 'html2canvas/dist/lib/css/layout/bounds.js';
import { COLORS, isTransparent, parseColor } from 'html2canvas/dist/lib/css/types/color.js';
import { Context } from 'html2canvas/dist/lib/core/context.js';
import { FEATURES } from 'html2canvas/dist/lib/core/features.js';
import { DocumentCloner } from 'html2canvas/dist/lib/dom/document-cloner.js';
import { ElementContainer } from 'html2canvas/dist/lib/dom/element-container.js';
import { LIElementContainer } from 'html2canvas/dist/lib/dom/elements/li-element-container.js';
import { OLElementContainer } from 'html2canvas/dist/lib/dom/elements/ol-element-container.js';
import { SelectElementContainer } from 'html2canvas/dist/lib/dom/elements/select-element-container.js';
import { TextareaElementContainer } from 'html2canvas/dist/lib/dom/elements/textarea-element-container.js';
import * as nodes from 'html2canvas/dist/lib/dom/node-parser.js';
import { CanvasElementContainer } from 'html2canvas/dist/lib/dom/replaced-elements/canvas-element-container.js';
import { IFrameElementContainer } from 'html2canvas/dist/lib/dom/replaced-elements/iframe-element-container.js';
import { ImageElementContainer } from 'html2canvas/dist/lib/dom/replaced-elements/image-element-container.js';
import { InputElementContainer } from 'html2canvas/dist/lib/dom/replaced-elements/input-element-container.js';
import { SVGElementContainer } from 'html2canvas/dist/lib/dom/replaced-elements/svg-element-container.js';
import { TextContainer } from 'html2canvas/dist/lib/dom/text-container.js';
import { CanvasRenderer } from 'html2canvas/dist/lib/render/canvas/canvas-renderer.js';
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
const SLICE = 12; // ms of painting, then the event loop goes on
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

/** Let the event loop go on (input, rendering, the page's own tasks): a new task. */
const pause = () => (self.scheduler && scheduler.yield ? scheduler.yield() : new Promise((resolve) => setTimeout(resolve)));

// Words are found by html2canvas's own line breaker (css-line-break), not Intl.Segmenter:
// the browser's first Segmenter loads its break iterators (ICU), 25-150 ms in one call.
Object.defineProperty(FEATURES, 'SUPPORT_NATIVE_TEXT_SEGMENTATION', { value: false });

let until = 0;
/** Once SLICE ms have passed since the last pause: pause. */
async function slice() {
  if (performance.now() > until) {
    await pause();
    until = performance.now() + SLICE;
  }
}

/** html2canvas's canvas renderer, painting element by element with the event loop let
 * through every SLICE ms (its own methods are promise chains: one task for the whole page). */
class SlicedRenderer extends CanvasRenderer {
  async renderStack(stack) {
    await slice();
    return super.renderStack(stack);
  }
  async renderNode(paint) {
    await slice();
    return super.renderNode(paint);
  }
}

// html2canvas's parse (node-parser's parseTree) walks the whole page in one call: every
// element's computed style through its CSS parser, every text node's word boxes. The same walk
// here, with a pause between siblings once SLICE ms have passed; a subtree of at most SMALL
// elements is handed to parseTree whole. The containers are html2canvas's own classes.
const SMALL = 10;
const CONTAINERS = [
  ['isImageElement', ImageElementContainer],
  ['isCanvasElement', CanvasElementContainer],
  ['isSVGElement', SVGElementContainer],
  ['isLIElement', LIElementContainer],
  ['isOLElement', OLElementContainer],
  ['isInputElement', InputElementContainer],
  ['isSelectElement', SelectElementContainer],
  ['isTextareaElement', TextareaElementContainer],
  ['isIFrameElement', IFrameElementContainer],
];
/** node-parser's createContainer: the element's container, its children not parsed. */
const create = (context, el) => new (CONTAINERS.find(([is]) => nodes[is](el)) || [0, ElementContainer])[1](context, el);
/** Elements whose children node-parser does not parse. */
const leaf = (el) => nodes.isTextareaElement(el) || nodes.isSVGElement(el) || nodes.isSelectElement(el);
const LIST_OWNERS = /^(OL|UL|MENU)$/;

/** node-parser's parseNodeTree (node's children into `parent`), sliced. Flags: 2 a stacking
 * context, 4 a real one, 8 a list owner (html2canvas's FLAGS). */
async function parseNodes(context, node, parent, root) {
  for (let child = node.firstChild, next; child; child = next) {
    next = child.nextSibling;
    await slice();
    if (nodes.isTextNode(child)) {
      if (child.data.trim().length > 0) parent.textNodes.push(new TextContainer(context, child, parent.styles));
    } else if (nodes.isElementNode(child)) {
      if (nodes.isSlotElement(child) && child.assignedNodes) {
        for (const assigned of child.assignedNodes()) await parseNodes(context, assigned, parent, root);
        continue;
      }
      // A small subtree at once (parseTree marks its root a real stacking context: unmarked here).
      const whole = !child.shadowRoot && !leaf(child) && child.getElementsByTagName('*').length <= SMALL;
      const container = whole ? nodes.parseTree(context, child) : create(context, child);
      container.flags &= ~4;
      const styles = container.styles;
      if (!styles.isVisible()) continue;
      if (styles.isPositionedWithZIndex() || styles.opacity < 1 || styles.isTransformed() || (nodes.isBodyElement(child) && root.styles.isTransparent())) {
        container.flags |= 4;
      } else if (styles.isPositioned() || styles.isFloating()) {
        container.flags |= 2;
      }
      if (LIST_OWNERS.test(child.tagName)) container.flags |= 8;
      parent.elements.push(container);
      if (whole) continue;
      if (child.shadowRoot) await parseNodes(context, child.shadowRoot, container, root);
      else if (!leaf(child)) await parseNodes(context, child, container, root);
    }
  }
}

/** html2canvas's context of one rendering (options as html2canvas() sets them by default,
 * images waited for at most 5 s): the window `width` px wide, not scrolled. */
export const newContext = (width) =>
  new Context({ logging: false, imageTimeout: 5000, useCORS: false, allowTaint: false }, new Bounds(0, 0, width, innerHeight));

/** html2canvas's own parse, for tests: the sliced one must build the same tree. */
export const parseWhole = nodes.parseTree;

/** node-parser's parseTree, sliced. */
export async function parseSliced(context, element) {
  const root = create(context, element);
  root.flags |= 4;
  until = performance.now() + SLICE;
  await parseNodes(context, element, root, root);
  return root;
}

/** The canvas as a data URL: encoded by canvas.toBlob (asynchronous, not in a task of ours). */
const dataUrl = (canvas, type, quality) =>
  new Promise((resolve, reject) =>
    canvas.toBlob((blob) => {
      if (!blob) return reject(new Error('no image'));
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = reject;
      reader.readAsDataURL(blob);
    }, type, quality),
  );

/** The iframe html2canvas copies the page into (its createIFrameContainer's, the same class
 * and style: hidden, off screen), made and attached before toIFrame runs, in a task of its
 * own: a new child document is ~10 ms of CPU, and toIFrame's writing the copy into it a few
 * more, one task together. With it, what toIFrame takes for the page's document: a stand-in
 * whose createElement returns this frame and whose body does not append it again (that would
 * reload it). */
function attachedFrame(doc, bounds) {
  const frame = doc.createElement('iframe');
  frame.className = 'html2canvas-container'; // never recorded (dom-record.js), never in a picture
  frame.setAttribute('data-html2canvas-ignore', 'true');
  frame.style.cssText = 'visibility:hidden;position:fixed;left:-10000px;top:0px;border:0';
  frame.width = bounds.width;
  frame.height = bounds.height;
  frame.scrolling = 'no';
  doc.body.appendChild(frame);
  return [frame, { createElement: () => frame, body: { appendChild: () => frame }, defaultView: doc.defaultView }];
}

/** What html2canvas(root, {scale, width, height, backgroundColor: white, onclone, ignoreElements,
 * logging: false}) does, stage by stage with a pause between stages: the page cloned, the
 * copy put in an iframe and masked, parsed (getComputedStyle, text boxes), painted. */
async function render(root, scale, width, height) {
  const context = newContext(width);
  const windowBounds = context.windowBounds;
  await pause();
  const cloner = new DocumentCloner(context, root, {
    allowTaint: false,
    onclone: (doc) => (maskClone(doc), pause()),
    ignoreElements: (el) => el.hasAttribute && el.hasAttribute('data-hindsight-ignore'),
    inlineImages: false,
    copyStyles: false,
  });
  const clone = cloner.clonedReferenceElement;
  await pause();
  const [frame, owner] = attachedFrame(root.ownerDocument, windowBounds);
  try {
    await pause();
    await cloner.toIFrame(owner, windowBounds);
    // The page's own background, else white (html2canvas's parseBackgroundColor).
    const doc = clone.ownerDocument;
    const background = [doc.documentElement, doc.body].map((el) => (el ? parseColor(context, getComputedStyle(el).backgroundColor) : COLORS.TRANSPARENT));
    const backgroundColor = isTransparent(background[0]) ? (isTransparent(background[1]) ? 0xffffffff : background[1]) : background[0];
    const tree = await parseSliced(context, clone);
    if (backgroundColor === tree.styles.backgroundColor) tree.styles.backgroundColor = COLORS.TRANSPARENT;
    await pause();
    until = performance.now() + SLICE;
    return await new SlicedRenderer(context, { backgroundColor, scale, x: 0, y: 0, width, height }).render(tree);
  } finally {
    DocumentCloner.destroy(frame);
  }
}

/** Render the page with `options` {format, quality, maxWidth} and tracker.js's masking
 * options; resolve to {image_data, width, height, elements}, or null when identical to the
 * last one. */
export async function shoot(cfg, options) {
  configureMasking(cfg);
  const root = document.documentElement;
  const width = root.clientWidth || innerWidth;
  const height = Math.min(MAX_HEIGHT, Math.max(root.scrollHeight, document.body ? document.body.scrollHeight : 0, innerHeight));
  const canvas = await render(root, Math.min(1, options.maxWidth / width), width, height);
  await pause();
  const data = await dataUrl(canvas, 'image/' + options.format, options.quality);
  const print = fingerprint(data);
  if (print === previous || data.length < 32) return null;
  previous = print;
  await pause();
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

/** ms after the page's load event before the first screenshot of a document is taken. */
export const AFTER_LOAD = 2000;
let calls = 0;
/** Once the page has loaded, when the browser is next idle (at the latest 3 s from then).
 * The page load's own screenshot (this document's first call) also waits until AFTER_LOAD ms
 * after the load event: a page's first seconds are its busiest (its own scripts, tracker.js,
 * the DOM recording's start, the requests of all of them), and a screenshot's stages, a few ms
 * of CPU each, were stretched past 50 ms of wall time there (docs/DECISIONS.md "The SPA's first
 * seconds"). Resolves false when another page view called meanwhile (that one goes on). */
async function settled() {
  const call = ++calls;
  if (document.readyState != 'complete') await new Promise((loaded) => addEventListener('load', loaded, { once: true }));
  const [nav] = performance.getEntriesByType('navigation');
  const wait = call == 1 && nav ? (nav.loadEventEnd || performance.now()) + AFTER_LOAD - performance.now() : 0;
  if (wait > 0) await new Promise((later) => setTimeout(later, wait));
  await new Promise((idle) => (self.requestIdleCallback || setTimeout)(idle, { timeout: 3000 }));
  return call == calls;
}

/** tracker.js's entry, 800 ms after each page view: take this page view's screenshot, if one
 * is wanted, and hand it to `upload` (the transport's outbox) as [session_id, path, JSON
 * body, 0]. cfg: tracker.js's options plus sessionId(), active(), get(), num(). */
export default async function capture(cfg, upload) {
  reportEarlyNetwork(cfg);
  if (!(await settled())) return;
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
