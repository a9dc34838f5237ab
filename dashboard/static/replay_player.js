// The DOM replay player. It runs in a data: document that /dashboard/player builds
// (replay_sandbox.js): an opaque origin, never the dashboard's, under /dashboard/player's CSP,
// which lets it fetch nothing. It only replays what the replay page (replay.js, the top
// window, the dashboard's origin) posts to it:
//
//   {type: 'load', events, at, playing, speed}   a new window of rrweb events (from a seek point)
//   {type: 'append', events}                     the next segment's events, while it plays
//   {type: 'sync', at, playing, speed}           the replay page's clock (ms since the epoch)
//
//   {type: 'ping'}                               say 'ready' again (the replay page's script
//                                                started after the player did)
//
// and answers {type: 'ready'}, {type: 'loaded', first, last}, {type: 'error', message}.
// rrweb's Replayer rebuilds the recorded page in an iframe of its own, sandboxed without
// allow-scripts: the recorded page's scripts never run.
(function () {
  'use strict';

  var DRIFT_MS = 250;      // re-align rrweb's clock with the replay page's beyond this
  // The dashboard's origin, written here by replay_sandbox.js (ours is opaque: 'null').
  var dashboard = document.querySelector('meta[name="hindsight-origin"]').getAttribute('content');
  var box = document.getElementById('player');
  var message = document.getElementById('message');
  var replayer = null, base = 0, last = 0, running = false, speed = 1, size = null, shown = null;
  var shown0 = 0;   // the earliest moment shown: just after the window's first full snapshot

  function tell(data) { window.top.postMessage(data, dashboard); }

  function fit() {
    if (!replayer || !size) return;
    var w = box.clientWidth, h = box.clientHeight;
    var k = Math.min(w / size.width, h / size.height);
    var x = Math.max(0, (w - size.width * k) / 2), y = Math.max(0, (h - size.height * k) / 2);
    replayer.wrapper.style.transform = 'translate(' + x + 'px,' + y + 'px) scale(' + k + ')';
    document.body.dataset.scale = k.toFixed(4);
  }

  // rrweb's offsets count from the window's first event; the page exists from its first full
  // snapshot on (just after it: rrweb applies the events *before* an offset when it seeks).
  function offset(at) { return Math.max(at, shown0) - base; }

  function sync(at, playing, newSpeed) {
    if (!replayer) return;
    if (newSpeed && newSpeed !== speed) {
      speed = newSpeed;
      replayer.setConfig({ speed: speed });
      if (running) running = false;   // restart below at the new speed
    }
    var off = offset(at);
    if (!playing || at > last) {
      // Paused, or past the last event loaded (nothing changes after it): show that moment.
      // rrweb applies the events before it at once, from the last full snapshot before it
      // when going back (last + 1: the last event itself too).
      // Moments that show the same (before the first full snapshot) are one: no rebuild.
      var target = offset(Math.min(at, last + 1));
      if (running || shown !== target) replayer.pause(target);
      shown = target;
      running = false;
    } else if (!running || Math.abs(replayer.getCurrentTime() - off) > DRIFT_MS * speed) {
      replayer.play(off);
      running = true;
      shown = null;
    }
    document.body.dataset.at = String(Math.round(at));
  }

  function load(events, at, playing, newSpeed) {
    if (replayer) {
      replayer.destroy();
      replayer = null;
    }
    box.textContent = '';
    message.hidden = true;
    running = false;
    shown = null;
    size = null;
    if (!events.length) throw new Error('no events to replay');
    events.sort(function (a, b) { return a.timestamp - b.timestamp; });
    base = events[0].timestamp;
    last = events[events.length - 1].timestamp;
    var snapshot = events.filter(function (e) { return e.type === 2; })[0];
    shown0 = (snapshot ? snapshot.timestamp : base) + 1;
    if (events.length < 2) events = events.concat([{ type: 5, data: { tag: 'hindsight-end', payload: {} }, timestamp: last }]);
    speed = newSpeed || 1;
    replayer = new window.HindsightReplayer(events, {
      root: box,
      speed: speed,
      skipInactive: false,            // the replay page skips inactivity (its clock jumps)
      showWarning: false,
      triggerFocus: false,
      pauseAnimation: true,
      mouseTail: { duration: 500, lineWidth: 3, strokeStyle: 'rgba(30,107,214,0.6)' },
      UNSAFE_replayCanvas: false      // never: it would add allow-scripts to rrweb's iframe
    });
    replayer.on('resize', function (dimension) {
      size = { width: dimension.width, height: dimension.height };
      fit();
    });
    replayer.on('finish', function () { running = false; });
    sync(at, playing, speed);
    document.body.dataset.first = String(base);
    document.body.dataset.last = String(last);
    tell({ type: 'loaded', first: base, last: last });
  }

  function append(events) {
    if (!replayer) return;
    events.sort(function (a, b) { return a.timestamp - b.timestamp; });
    for (var i = 0; i < events.length; i++) replayer.addEvent(events[i]);
    if (events.length) last = Math.max(last, events[events.length - 1].timestamp);
    document.body.dataset.last = String(last);
  }

  window.addEventListener('message', function (ev) {
    if (ev.source !== window.top || ev.origin !== dashboard) return;   // only the replay page
    var m = ev.data || {};
    try {
      if (m.type === 'load') load(m.events, m.at, m.playing, m.speed);
      else if (m.type === 'append') append(m.events);
      else if (m.type === 'sync') sync(m.at, m.playing, m.speed);
      else if (m.type === 'ping') tell({ type: 'ready' });   // the replay page started after us
    } catch (err) {
      message.hidden = false;
      message.textContent = 'Could not replay this recording (' + err.message + ').';
      tell({ type: 'error', message: String(err.message) });
    }
  });
  window.addEventListener('resize', fit);
  tell({ type: 'ready' });
})();
