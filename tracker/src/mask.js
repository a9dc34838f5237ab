// What never leaves the browser: the values of sensitive fields, decided here, once.

// Names, ids and autocomplete tokens of password, payment and other secret fields.
const SECRET = /pass|pwd|secret|token|card|cc-|ccnum|cvc|cvv|iban|ssn|pin\b/i;
// 13 to 19 digits, optionally grouped by spaces or dashes: a payment card number.
const CARD = /(?:\d[ -]?){12,18}\d/;
const EMAIL = /[^\s@]+@[^\s@]+\.[^\s@]/;
const SCRUB = /(?:\d[ -]?){12,18}\d|[^\s@]+@[^\s@]+\.[^\s@]*/g; // CARD or EMAIL, as a whole
const passwords = new WeakSet(); // a password field stays masked after a "show password" toggle

let maskSelector = '';
let maskAll = false;

export function configureMasking(cfg) {
  maskAll = cfg.maskAll;
  maskSelector = cfg.mask;
  try {
    D.querySelector(maskSelector || 'x');
  } catch (e) {
    maskSelector = ''; // an invalid selector must not break recording
  }
}
const D = document;

// Form fields by tag, editable content by attribute (isContentEditable would make the
// browser recompute styles first, on every event). Inside any [contenteditable] counts,
// even under contenteditable=false: the private side of a doubt.
const FORM = /^(INPUT|TEXTAREA|SELECT)$/;
export const isField = (el) => el && (FORM.test(el.tagName) || !!el.closest('[contenteditable]'));

/** Values that look like a card number or an email address are masked wherever they appear. */
const looksSensitive = (v) => CARD.test(v) || EMAIL.test(v);

/** Is this element's content masked? data-hindsight-mask on an ancestor masks its subtree. */
export function isMasked(el) {
  const type = el.type;
  if (type == 'password') passwords.add(el);
  if (passwords.has(el) || (isField(el) && SECRET.test([el.autocomplete, el.name, el.id]))) return true;
  const marked = el.closest('[data-hindsight-mask],[data-hindsight-unmask]');
  if (marked) return !marked.hasAttribute('data-hindsight-unmask');
  return maskAll || type == 'email' || type == 'tel' || (!!maskSelector && !!el.closest(maskSelector));
}

/** The value to record for a field: [value or null, masked]. */
export function fieldValue(el) {
  const v = String(/^(checkbox|radio)$/.test(el.type) ? el.checked : FORM.test(el.tagName) ? el.value : el.textContent).slice(0, 1024);
  return isMasked(el) || looksSensitive(v) ? [null, true] : [v, false];
}

/** The text of a clicked button or link (at most 80 characters; a container's is not
 * taken), or null when it is (or looks) private. */
export function textOf(el) {
  const t = maskAll || isField(el) || isMasked(el) ? '' : (el.textContent || '').replace(/\s+/g, ' ').trim();
  return t && t.length <= 80 && !looksSensitive(t) ? t : null;
}

/** Free text (error messages, stacks) with whatever looks like an email or a card number replaced. */
export const scrub = (s, n) => (s == null ? null : String(s).slice(0, n).replace(SCRUB, '[masked]'));

/** In html2canvas's clone of the page: blank and grey out every masked element. */
export function maskClone(doc) {
  for (const el of doc.querySelectorAll('input,textarea,select,[contenteditable],[data-hindsight-mask]' + (maskSelector ? ',' + maskSelector : ''))) {
    if (!(isField(el) ? fieldValue(el)[1] : isMasked(el))) continue;
    if (el.tagName != 'SELECT' && 'value' in el) el.value = '';
    el.style.setProperty('color', 'transparent', 'important');
    el.style.setProperty('background', '#9aa0a6', 'important');
    el.style.setProperty('text-shadow', 'none', 'important');
    for (const media of el.querySelectorAll('img,svg,canvas,video')) media.style.setProperty('visibility', 'hidden', 'important');
  }
}
