// For bench/tracker.py only: rrweb's recorder, bundled and minified by the same esbuild.
import { record } from 'rrweb';

window.rrwebRecord = record;
