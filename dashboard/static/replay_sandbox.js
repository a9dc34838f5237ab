// The DOM replay's sandbox, built inside /dashboard/player (whose CSP it inherits): the player
// (rrweb's replayer + replay_player.js) runs in a data: document, an opaque origin that is
// never the dashboard's. Not `sandbox="allow-scripts"` without allow-same-origin: sandbox
// flags pass down to nested frames, so the iframe rrweb rebuilds the recorded page in would
// get yet another opaque origin, out of the player's reach. A data: document is opaque
// without that flag, so rrweb's own iframe (sandbox="allow-same-origin", no scripts) shares
// the player's opaque origin (and, with no allow-forms, allow-popups or allow-top-navigation
// in that sandbox, recorded forms, popups and links act on nothing). The HTML below holds
// only our own URLs, never recorded data.
(function () {
  'use strict';

  var staticBase = new URL(document.body.dataset.static + '/', location.href).href;
  function attr(value) { return String(value).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;'); }
  var html = '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="hindsight-origin" content="' + attr(location.origin) + '">' +
    '<link rel="stylesheet" href="' + attr(staticBase + 'dist/rrweb-replay.css') + '">' +
    '<style>html,body{margin:0;height:100%;overflow:hidden;background:#f3f4f6}' +
    '#player{position:absolute;inset:0;overflow:hidden}' +
    '.replayer-wrapper{position:absolute;left:0;top:0;transform-origin:0 0}' +
    '.replayer-wrapper>iframe{border:0;background:#fff;pointer-events:none}' +
    '#message{font:14px system-ui,sans-serif;color:#555;padding:1em}</style>' +
    '<script defer src="' + attr(staticBase + 'dist/rrweb-replay.js') + '"></script>' +
    '<script defer src="' + attr(staticBase + 'replay_player.js') + '"></script>' +
    '</head><body><div id="player"></div><p id="message" hidden></p></body></html>';
  var frame = document.createElement('iframe');
  frame.title = 'the recorded page, replayed';
  frame.src = 'data:text/html;charset=utf-8,' + encodeURIComponent(html);
  document.body.appendChild(frame);
})();
