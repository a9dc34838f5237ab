// Build tracker.js and its lazy chunks into dist/ (git-ignored): the screenshot chunk
// (html2canvas + capture.js) and the DOM-recording chunk (@rrweb/record + dom-record.js),
// with a manifest of sizes and Subresource Integrity hashes. Deterministic: the same sources and
// lock file give byte-identical output, so the integrity hash in README.md stays valid.
//
//   node build.mjs          (npm run build)

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { minify } from 'terser';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const pkg = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const TARGET = ['es2020'];

async function bundle(entry, options = {}) {
  const result = await esbuild.build({
    entryPoints: [join(here, entry)],
    bundle: true,
    minify: true,
    format: 'iife',
    target: TARGET,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'warning',
    ...options,
  });
  return result.outputFiles[0].contents;
}

const sha = (alg, data, enc) => createHash(alg).update(data).digest(enc);
const describe = (data) => ({
  bytes: data.length,
  gzip_bytes: gzipSync(data, { level: 9 }).length,
  sha256: sha('sha256', data, 'hex'),
  integrity: 'sha384-' + sha('sha384', data, 'base64'),
});

// A chunk's name carries its hash: it is served as immutable. Eight hex digits (32 bits)
// tell a build from the ones before it, and the core, which names both chunks, stays 7 B smaller.
const named = (prefix, data) => `${prefix}.${sha('sha256', data, 'hex').slice(0, 8)}.js`;
// The lazy chunks ask V8 to compile all their functions at once, on the background thread
// that compiles a script as it streams in (Chrome's explicit compile hints; a plain comment
// elsewhere): compiled lazily, on first call, the screenshot chunk's evaluation and its first
// screenshot were 50-120 ms tasks on the main thread (docs/DECISIONS.md "Screenshots without
// long tasks").
const EAGER = { js: '//# allFunctionsCalledOnLoad' };
// @rrweb/record 2.1.6 lists querySelector and querySelectorAll, two methods, among Element's
// accessors, so its check that the page has not patched Element always fails and record()
// builds and drops a hidden iframe to take Element's prototype from a clean window: a child
// document made and torn down in rrweb's start task, half of its CPU time on the demo SPA
// (upstream PR rrweb-io/rrweb#1802 moves them to the methods; not released). The same move is
// made here, at bundling time; the build fails if the text is not there any more.
const RRWEB_RECORD = /@rrweb[\\/]record[\\/]dist[\\/]record\.js$/;
const UNTAINTED = [
  ['Element: ["shadowRoot", "querySelector", "querySelectorAll"],', 'Element: ["shadowRoot"],'],
  ['  Element: [],\n  MutationObserver: ["constructor"]', '  Element: ["querySelector", "querySelectorAll"],\n  MutationObserver: ["constructor"]'],
];
// In a frame of another origin than its parent, rrweb posts its events to the parent with the
// target origin "*": any page that frames the site would read the frame's recording. That one
// call goes to src/frame-target.js instead, which posts only to a parent origin the framed page
// lists in data-record-parents, with that origin as the target, else nothing (docs/DECISIONS.md
// "A recorded cross-origin frame posts to a parent the site named").
const TO_LISTED_PARENT = [['window.parent.postMessage(message, "*");', '__hindsightPostToParent(message);']];
const IMPORTS = 'import { post as __hindsightPostToParent } from "./frame-target.js";\n';
const patchedRrweb = {
  name: 'rrweb-patched',
  setup(build) {
    build.onLoad({ filter: RRWEB_RECORD }, ({ path }) => {
      let contents = readFileSync(path, 'utf8');
      for (const [from, to] of [...UNTAINTED, ...TO_LISTED_PARENT]) {
        if (contents.split(from).length != 2) throw new Error(`${path}: expected once: ${from}`);
        contents = contents.replace(from, to);
      }
      // The import resolves from src/: the one frame-target.js module that dom-record.js sets.
      return { contents: IMPORTS + contents, loader: 'js', resolveDir: join(here, 'src') };
    });
  },
};
const chunk = await bundle('src/capture.js', { globalName: '__hindsightCapture', banner: EAGER });
const chunkName = named('capture', chunk);
const recorder = await bundle('src/dom-record.js', { globalName: '__hindsightRecord', banner: EAGER, plugins: [patchedRrweb] });
const recorderName = named('record', recorder);
// The core is bundled by esbuild and minified by terser, which packs it a little tighter.
// esbuild's syntax minification first (names and whitespace are terser's): terser starts
// from shorter forms and the core gzips 26 B smaller than with terser alone.
const bundled = await bundle('src/index.js', {
  define: {
    CAPTURE_CHUNK: JSON.stringify(chunkName),
    RECORD_CHUNK: JSON.stringify(recorderName),
    VERSION: JSON.stringify(pkg.version),
  },
  minify: false,
  minifySyntax: true,
});
const tracker = Buffer.from(
  (
    await minify(Buffer.from(bundled).toString('utf8'), {
      ecma: 2020,
      compress: { passes: 3 },
      // Internal property names end in _ (and __s, __hs): shortened; nothing else is.
      mangle: { toplevel: true, properties: { regex: /^__[a-z]+$|[a-z]_$/ } },
      format: { comments: false },
    })
  ).code,
);
const rrweb = await bundle('bench/rrweb-entry.js');

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'bench'), { recursive: true });
writeFileSync(join(dist, 'tracker.js'), tracker);
writeFileSync(join(dist, chunkName), chunk);
writeFileSync(join(dist, recorderName), recorder);
writeFileSync(join(dist, 'bench', 'rrweb-record.js'), rrweb);
const manifest = {
  version: pkg.version,
  capture_chunk: chunkName,
  record_chunk: recorderName,
  files: { 'tracker.js': describe(tracker), [chunkName]: describe(chunk), [recorderName]: describe(recorder) },
  bench: { 'rrweb-record.js': describe(rrweb) },
};
writeFileSync(join(dist, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
const t = manifest.files['tracker.js'];
console.log(`tracker.js ${t.bytes} B (${t.gzip_bytes} B gzip) ${t.integrity}`);
for (const name of [chunkName, recorderName]) {
  const f = manifest.files[name];
  console.log(`${name} ${f.bytes} B (${f.gzip_bytes} B gzip)`);
}
