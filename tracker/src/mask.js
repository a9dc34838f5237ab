// What never leaves the browser, decided here, once: the same rules mask the input and
// keypress events (recorder.js), the DOM recording (rrweb's masking options, record.js)
// and the screenshots (capture.js). Each bundle gets its own copy of this module and
// configures it from the same options.

// Names, ids and autocomplete tokens of password, payment, one-time-code and other secret fields.
const SECRET = /pass|pwd|secret|token|card|cc-|ccnum|cvc|cvv|iban|ssn|pin\b|one-time|otp/i;
// 13 to 19 digits, optionally grouped by spaces or dashes: a payment card number.
const CARD = /(?:\d[ -]?){12,18}\d/;
const EMAIL = /[^\s@]+@[^\s@]+\.[^\s@]/;
const SCRUB = RegExp(CARD.source + '|' + EMAIL.source + '*', 'g'); // CARD or EMAIL, as a whole
const MARKS = '[data-hindsight-mask],[data-hindsight-unmask]';
const UNMASK = 'data-hindsight-unmask';
const BLOCK = '[data-hindsight-block]';
const MASKED = '*****'; // a masked value: the same whatever it was, so not even its length leaves
const passwords = new WeakSet(); // a password field stays masked after a "show password" toggle

let maskSelector = '';
let maskAll = true;
let allText = false; // data-mask-text="all"

export function configureMasking(cfg) {
  maskAll = cfg.maskAll;
  allText = cfg.maskText;
  maskSelector = cfg.mask;
  try {
    D.querySelector(maskSelector || 'x');
  } catch {
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

/** Password, card and one-time-code fields: never recorded, whatever the options. */
function secret(el) {
  if (el.type == 'password') passwords.add(el);
  return passwords.has(el) || (isField(el) && SECRET.test([el.autocomplete, el.name, el.id]));
}

/** Inside data-hindsight-block: masked. Else the nearest data-hindsight-mask / -unmask
 * decides; without one, `dflt` or the data-mask selectors. */
function marked(el, dflt) {
  const mark = el.closest(MARKS);
  return !!el.closest(BLOCK) || (mark ? !mark.hasAttribute(UNMASK) : dflt || (!!maskSelector && !!el.closest(maskSelector)));
}

/** Is this field's value masked? Blocked, secret, and (by default) every field is. */
export const isMasked = (el) => secret(el) || marked(el, maskAll || el.type == 'email' || el.type == 'tel');

/** Is the text of this (non-field) element masked? Under data-hindsight-mask, or all with data-mask-text="all". */
export const textMasked = (el) => marked(el, allText);

/** A field's value: [the value to record, or null when masked; the value itself, which
 * tracker.js keeps to itself]. */
export function fieldValue(el) {
  const v = String(/^(checkbox|radio)$/.test(el.type) ? el.checked : FORM.test(el.tagName) ? el.value : el.textContent).slice(0, 1024);
  return [isMasked(el) || looksSensitive(v) ? null : v, v];
}

/** The text of a clicked button or link (at most 80 characters; a container's is not
 * taken), or null when it is (or looks) private. */
export function textOf(el) {
  const t = isField(el) || textMasked(el) ? '' : (el.textContent || '').replace(/\s+/g, ' ').trim();
  return t && t.length <= 80 && !looksSensitive(t) ? t : null;
}

/** Free text (error messages, stacks) with whatever looks like an email or a card number replaced. */
export const scrub = (s, n) => (s == null ? null : String(s).slice(0, n).replace(SCRUB, '[masked]'));

const stars = (s) => s.replace(/\S/g, '*');

/** rrweb's maskInputFn: a field's value as the DOM recording keeps it. */
export const maskInput = (text, el) => (text && (isMasked(el) || looksSensitive(text)) ? MASKED : text);

/** rrweb's maskTextFn, called for the text nodes that maskTextSelector picks: typed text
 * in editable content like a field's value, masked text as asterisks (the layout stays). */
export function maskText(text, el) {
  if (isField(el)) return text.trim() && (isMasked(el) || looksSensitive(text)) ? MASKED : text;
  return (el ? textMasked(el) : allText) ? stars(text) : text;
}

/** rrweb's privacy options, from the same rules. Only text that may be masked goes through
 * maskText (which decides, data-hindsight-unmask included): a selector of every element
 * would cost a call per text node, twice rrweb's own snapshot time on a large page. */
export const recordingPrivacy = (extraBlock) => ({
  blockSelector: BLOCK + extraBlock,
  maskTextSelector: allText ? '*' : '[data-hindsight-mask],[contenteditable]' + (maskSelector && ',' + maskSelector),
  maskTextFn: maskText,
  // Every <input> (hidden ones too), <textarea> and <select> goes through maskInput.
  maskInputOptions: { input: true, textarea: true, select: true },
  maskInputFn: maskInput,
});

/** In html2canvas's clone of the page: blocked elements become empty boxes of their size,
 * masked fields grey boxes, masked text transparent. */
export function maskClone(doc) {
  const win = doc.defaultView;
  for (const el of doc.querySelectorAll(BLOCK)) {
    const box = el.getBoundingClientRect();
    const style = {
      width: box.width + 'px',
      height: box.height + 'px',
      'box-sizing': 'border-box',
      visibility: 'hidden',
    };
    if (win.getComputedStyle(el).display == 'inline') style.display = 'inline-block';
    for (const k in style) el.style.setProperty(k, style[k], 'important');
    el.replaceChildren();
  }
  for (const el of doc.querySelectorAll('input,textarea,select,[contenteditable],[data-hindsight-mask]' + (maskSelector ? ',' + maskSelector : ''))) {
    if (!(isField(el) ? fieldValue(el)[0] == null : textMasked(el))) continue;
    if (el.tagName != 'SELECT' && 'value' in el) el.value = '';
    el.style.setProperty('color', 'transparent', 'important');
    el.style.setProperty('background', '#9aa0a6', 'important');
    el.style.setProperty('text-shadow', 'none', 'important');
    for (const media of el.querySelectorAll('img,svg,canvas,video')) media.style.setProperty('visibility', 'hidden', 'important');
  }
  if (allText) {
    for (const el of doc.body.querySelectorAll('*')) {
      if (textMasked(el)) {
        el.style.setProperty('color', 'transparent', 'important');
        el.style.setProperty('text-shadow', 'none', 'important');
      }
    }
  }
}
