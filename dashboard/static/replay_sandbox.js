// The DOM replay's sandbox, inside /dashboard/player (whose CSP it inherits): the player
// (rrweb's replayer + replay_player.js) runs in a data: document, an opaque origin that is
// never the dashboard's. Not `sandbox="allow-scripts"` without allow-same-origin: sandbox
// flags pass down to nested frames, so the iframe rrweb rebuilds the recorded page in would
// get yet another opaque origin, out of the player's reach. A data: document is opaque
// without that flag, so rrweb's own iframe (sandbox="allow-same-origin", no scripts) shares
// the player's opaque origin (and, with no allow-forms, allow-popups or allow-top-navigation
// in that sandbox, recorded forms, popups and links act on nothing). The HTML below holds
// only our own URLs, never recorded data.
//
// The page's HTML holds that frame already (built by the server, see
// hindsight.dashboard.recording.player_document: one hop less before the replayer loads),
// with our URLs made from the origin the server saw (data-origin). When that is not the
// origin the browser sees (a proxy that rewrites Host or ends TLS), its scripts are blocked
// by the CSP ('self'); this script then builds the frame again from this page's own URL.
(function () {
  'use strict';

  var built = document.querySelector('iframe');
  if (built && document.body.dataset.origin === location.origin) return;   // the server's frame is right
  var staticBase = new URL(document.body.dataset.static + '/', location.href).href;
  function attr(value) { return String(value).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;'); }
  var html = '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="hindsight-origin" content="' + attr(location.origin) + '">' +
    '<link rel="stylesheet" href="' + attr(staticBase + 'dist/rrweb-replay.css') + '">' +
    '<style>' + document.body.dataset.style + '</style>' +
    '<script defer src="' + attr(staticBase + 'dist/rrweb-replay.js') + '"></script>' +
    '<script defer src="' + attr(staticBase + 'replay_player.js') + '"></script>' +
    '</head><body><div id="player"></div><p id="message" hidden></p></body></html>';
  var frame = document.createElement('iframe');
  frame.title = 'the recorded page, replayed';
  frame.src = 'data:text/html;charset=utf-8,' + encodeURIComponent(html);
  if (built) built.remove();
  document.body.appendChild(frame);
})();
