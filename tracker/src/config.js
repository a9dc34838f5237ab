// Options come from the <script> tag's data-* attributes (see tracker/README.md).

export function readConfig(script) {
  const get = (name, dflt) => (script && script.getAttribute('data-' + name)) || dflt;
  const flag = (name, dflt) => !/^(0|false|off|no)$/i.test(get(name, dflt));
  const num = (name, dflt, lo, hi) => {
    const v = +get(name, dflt);
    return v >= lo && v <= hi ? v : dflt;
  };
  const src = (script && script.src) || '';
  // Where tracker.js came from: the API root by default, and where its lazy chunk lives.
  const base = src.slice(0, src.lastIndexOf('/'));
  return {
    account: get('account', ''),
    endpoint: get('endpoint', base).replace(/\/+$/, ''),
    base,
    screenshots: flag('screenshots', 'on'),
    format: get('screenshot-format') == 'webp' ? 'webp' : 'jpeg',
    quality: num('screenshot-quality', 0.6, 0.05, 1),
    maxWidth: num('screenshot-max-width', 1024, 64, 4096),
    sampleRate: num('sample-rate', 1, 0, 1),
    mask: get('mask', ''),
    maskAll: flag('mask-all', 'off'),
    respectDnt: flag('respect-dnt', 'on'),
    flushMs: num('flush-interval', 5000, 250, 60000),
  };
}
