// The lazy screenshot chunk: html2canvas plus the code that drives it. tracker.js loads
// it from the same server the first time a page view is captured, so the core stays small.

import html2canvas from 'html2canvas';
import { configureMasking, maskClone } from './mask.js';

const MAX_HEIGHT = 6000; // CSS pixels of a long page that are captured
let previous = '';

/** FNV-1a over a string: a cheap fingerprint to skip identical screenshots. */
function fingerprint(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36) + s.length;
}

/** Render the page; resolve to {image_data, width, height}, or null when identical to the last one. */
export default async function capture(cfg) {
  configureMasking(cfg);
  const root = document.documentElement;
  const width = root.clientWidth || innerWidth;
  const height = Math.min(MAX_HEIGHT, Math.max(root.scrollHeight, document.body ? document.body.scrollHeight : 0, innerHeight));
  const canvas = await html2canvas(root, {
    scale: Math.min(1, cfg.maxWidth / width),
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
  const data = canvas.toDataURL('image/' + cfg.format, cfg.quality);
  const print = fingerprint(data);
  if (print === previous || data.length < 32) return null;
  previous = print;
  // The declared size is the image's real pixel size (the API checks it).
  return { image_data: data, width: canvas.width, height: canvas.height };
}
