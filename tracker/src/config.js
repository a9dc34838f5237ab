// Options come from the <script> tag's data-* attributes (see tracker/README.md). Names
// ending in _ are the core's own (the minifier shortens them); the lazy chunks read the others.

export function readConfig(script) {
  const get = (name, dflt) => (script && script.getAttribute('data-' + name)) || dflt;
  const flag = (name, dflt = 'on') => !/^(0|false|off|no)$/i.test(get(name, dflt));
  const num = (name, dflt, lo, hi) => {
    const v = +get(name, dflt);
    return v >= lo && v <= hi ? v : dflt;
  };
  const src = (script && script.src) || '';
  // Where tracker.js came from: the API root by default, and where its lazy chunks live.
  const base = src.slice(0, src.lastIndexOf('/'));
  return {
    account: get('account', ''),
    endpoint_: get('endpoint', base).replace(/\/+$/, ''),
    base,
    // The lazy chunks read their own options (data-screenshot-format, data-record-canvas...) through these.
    get,
    flag,
    num,
    screenshots_: flag('screenshots'),
    record: flag('record'),
    sampleRate_: num('sample-rate', 1, 0, 1),
    mask: get('mask', ''),
    maskAll: flag('mask-all'),
    maskText: get('mask-text') == 'all',
    respectDnt_: flag('respect-dnt'),
    flushMs_: num('flush-interval', 5000, 250, 60000),
  };
}
