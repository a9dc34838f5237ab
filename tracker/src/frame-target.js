// Where a recorded cross-origin frame posts its recording (docs/DECISIONS.md "A recorded
// cross-origin frame posts to a parent the site named").
//
// rrweb 2.x, recording a frame of another origin than its parent (recordCrossOriginIframes),
// posts every event to `window.parent` with the target origin "*": any page that framed the
// site would receive the frame's recording (its text, its attributes). tracker/build.mjs
// replaces that one call in @rrweb/record by post() below, which posts only to the parent's
// origin, and only when the framed page's <script> tag lists it in data-record-parents
// (origins, space-separated; a URL stands for its origin). That origin is postMessage's
// target origin, so the browser itself delivers nothing should the parent be of any other
// origin by then. Otherwise nothing is posted (and dom-record.js does not run rrweb's
// cross-origin mode at all).

import { D, W } from './util.js';

let target = null; // the listed parent's origin; null: post nothing

/** The parent's origin if `listed` names it (else null), which post() then posts to. The
 * parent's origin: location.ancestorOrigins[0] where the browser has it (Chromium, Safari),
 * else the origin of document.referrer (Firefox; none when the parent sends no referrer). An
 * opaque origin ("null") is never allowed. */
export function allowParent(listed) {
  target = null;
  try {
    const ancestors = location.ancestorOrigins;
    const parent = ancestors ? ancestors[0] : new URL(D.referrer).origin;
    // Each listed origin as the browser writes one ("https://shop.example/" and
    // "https://shop.example/any/path" name https://shop.example); "*" or junk names none.
    const origins = listed.split(/\s+/).map((x) => {
      try {
        return new URL(x).origin;
      } catch {
        return '';
      }
    });
    if (parent && parent != 'null' && origins.includes(parent)) target = parent;
  } catch {
    // no referrer (new URL('') throws): nothing is posted
  }
  return target;
}

/** The origin post() posts to, or null. */
export const allowedParent = () => target;

/** rrweb's `window.parent.postMessage(message, "*")`, to the listed parent's origin only. */
export function post(message) {
  if (target) W.parent.postMessage(message, target);
}
