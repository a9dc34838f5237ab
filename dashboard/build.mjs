// Build the dashboard's third-party browser code into static/dist/ (git-ignored):
// rrweb's replayer (no recorder) as one script that sets window.HindsightReplayer, and its
// stylesheet. The replay player page (/dashboard/replay/player) loads both inside its
// sandboxed iframe. Deterministic: the same lock file gives the same bytes.
//
//   node build.mjs          (npm run build; `make install` runs it when the lock file changes)

import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'static', 'dist');
const rrweb = join(here, 'node_modules', 'rrweb');
const rrwebVersion = JSON.parse(readFileSync(join(rrweb, 'package.json'), 'utf8')).version;

mkdirSync(dist, { recursive: true });
const result = await esbuild.build({
  stdin: {
    contents: "import { Replayer } from 'rrweb'; window.HindsightReplayer = Replayer;",
    resolveDir: here,
    sourcefile: 'replayer-entry.js',
  },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'none',
  charset: 'utf8',
  write: false,
  logLevel: 'warning',
});
const banner = `/* rrweb ${rrwebVersion} Replayer (MIT, https://github.com/rrweb-io/rrweb), bundled by dashboard/build.mjs */\n`;
writeFileSync(join(dist, 'rrweb-replay.js'), banner + Buffer.from(result.outputFiles[0].contents).toString('utf8'));
copyFileSync(join(rrweb, 'dist', 'style.min.css'), join(dist, 'rrweb-replay.css'));
console.log(`dashboard/static/dist: rrweb-replay.js, rrweb-replay.css (rrweb ${rrwebVersion})`);
