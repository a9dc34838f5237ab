// Small helpers shared by the tracker's modules. Nothing here may throw.

export const W = window;
export const D = document;
export const now = Date.now;
export const round = Math.round;

// Internal failures are counted, never thrown into the host page.
export const health = { errors: 0, dropped: 0 };

/** Wrap `fn` so that nothing it throws reaches the page (or its error handlers). */
export function safe(fn) {
  return function () {
    try {
      return fn.apply(this, arguments);
    } catch {
      health.errors++;
    }
  };
}

function storage(name) {
  try {
    return W[name]; // the getter throws where storage is disabled: run without persistence
  } catch {
    return null;
  }
}
export const LS = storage('localStorage');
export const SS = storage('sessionStorage');

export function load(s, key) {
  try {
    return s ? JSON.parse(s.getItem(key)) : null;
  } catch {
    return null;
  }
}

/** Store JSON (or remove the key for undefined); returns false when the store refused. */
export function save(s, key, value) {
  if (!s) return false;
  try {
    if (value === undefined) s.removeItem(key);
    else s.setItem(key, JSON.stringify(value));
    return true;
  } catch {
    return false;
  }
}

/** A random (version 4) UUID; crypto.randomUUID exists only in secure contexts. */
export const uuid = () =>
  '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) =>
    (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16),
  );

/** A URL without its query string and fragment (for network timings and error sources). */
export function bare(url) {
  url = String(url || '');
  const i = url.search(/[?#]/);
  return i < 0 ? url : url.slice(0, i);
}

export const clip = (s, n) => (s == null ? null : String(s).slice(0, n));

const chunks = {};
/** A lazy chunk from the server tracker.js came from, loaded once: resolves to its
 * default export, or null when it cannot be loaded. */
export const loadChunk = (base, name, global) =>
  (chunks[name] =
    chunks[name] ||
    new Promise((resolve) => {
      const s = D.createElement('script');
      s.src = base + '/tracker/' + name;
      s.onload = () => resolve((W[global] || {}).default);
      s.onerror = () => resolve(null);
      D.documentElement.append(s); // a script runs wherever it is appended
    }));
