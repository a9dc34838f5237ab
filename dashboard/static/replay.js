// The session player. A session with a DOM recording is replayed by rrweb inside a sandboxed
// iframe (/dashboard/player, see "DOM replay" below); one without shows the screenshot of the
// page the visitor was on, scrolled where they were, with their clicks and mouse trail drawn
// over it. Both have the timeline with markers and the event list in step, driven by one
// clock here. Text from the recording is only ever set as textContent or an attribute value
// here, never parsed as HTML; the recorded page itself only ever exists inside the sandbox.
(function () {
  'use strict';

  var root = document.getElementById('replay');
  if (!root) return;

  var TRAIL_MS = 1500;        // mouse trail length
  var CLICK_MS = 900;         // how long a click ripple stays
  var IDLE_MS = 2000;         // inactivity longer than this is skipped (when asked)
  var SEEK_STEP = 5000;
  var SPEEDS = [0.5, 1, 2, 4, 8];

  var el = function (id) { return document.getElementById(id); };
  var stage = el('stage'), img = el('shot'), canvas = el('overlay'), noShot = el('no-shot');
  var timeline = el('timeline'), markersBox = el('markers'), playhead = el('playhead');
  var played = el('played'), list = el('event-list'), playBtn = el('play'), speedSel = el('speed');
  var skipBox = el('skip'), nowLabel = el('now'), totalLabel = el('total'), loading = el('loading');
  var pageLabel = el('page-url');
  var D = null;               // the DOM replay's state, when the session has a recording

  var S = {
    session: null, t0: 0, duration: 1, events: [], shots: [], markers: [],
    // Per event, the state after it: page URL, document scroll, mouse position.
    after: [], complete: false, cur: 0, playing: false, speed: 1, skip: true,
    last: 0, shotId: null, currentIndex: -1, waiting: false
  };

  function ts(s) { return Date.parse(s); }
  function fmt(ms) {
    var s = Math.max(0, Math.floor(ms / 1000)), m = Math.floor(s / 60), h = Math.floor(m / 60);
    var mm = h ? String(m % 60).padStart(2, '0') : String(m);
    return (h ? h + ':' : '') + mm + ':' + String(s % 60).padStart(2, '0');
  }
  function bare(url) { return (url || '').split('#')[0]; }

  // ------------------------------------------------------------------ data

  // The events' data (S.events, S.after) is added at once: the clock and the overlay need it.
  // Their rows in the event list are built apart, in slices (buildList below).
  function addEvents(rows) {
    var prev = S.after.length ? S.after[S.after.length - 1] : { page: S.session.page_url, sy: 0, sx: 0, mx: null, my: null };
    for (var i = 0; i < rows.length; i++) {
      var e = rows[i];
      e.t = ts(e.timestamp) - S.t0;
      var st = { page: prev.page, sy: prev.sy, sx: prev.sx, mx: prev.mx, my: prev.my };
      if (e.event_type === 'page_view' && e.page_url) {
        if (bare(e.page_url) !== bare(st.page)) { st.sy = 0; st.sx = 0; }
        st.page = e.page_url;
      }
      if (e.event_type === 'scroll' && !e.target_selector) { st.sy = e.scroll_y || 0; st.sx = e.scroll_x || 0; }
      if (e.event_type === 'click' && e.scroll_y != null) { st.sy = e.scroll_y; st.sx = e.scroll_x || 0; }
      if (e.viewport_x != null && (e.event_type === 'mouse_move' || e.event_type === 'click')) {
        st.mx = e.viewport_x; st.my = e.viewport_y;
      }
      S.events.push(e);
      S.after.push(st);
      prev = st;
    }
    root.dataset.fetched = S.events.length;
    scheduleList();
    var lastT = S.events.length ? S.events[S.events.length - 1].t : 0;
    if (lastT > S.duration) setDuration(lastT);
  }

  // ------------------------------------------------------------------ the event list
  //
  // A 30-minute session has thousands of events; building their rows at once takes the main
  // thread for hundreds of milliseconds, which the player (same thread) needs for its first
  // frame. So the rows are built once the first frame is drawn (listStart), in slices of
  // about SLICE_MS when the browser is idle, in order. data-loaded counts the rows built;
  // data-complete is set once every event is fetched and has its row.

  var SLICE_MS = 8;
  var L = { started: false, scheduled: false, built: 0 };
  var idle = window.requestIdleCallback
    ? function (f) { window.requestIdleCallback(f, { timeout: 100 }); }
    : function (f) { setTimeout(f, 1); };

  function listStart() {
    if (L.started) return;
    L.started = true;
    if (!markersShown) {
      markersShown = true;
      drawMarkers();
    }
    scheduleList();
  }

  function scheduleList() {
    if (!L.started || L.scheduled) return;
    if (L.built >= S.events.length) { listDone(); return; }
    L.scheduled = true;
    idle(buildList);
  }

  function buildList() {
    L.scheduled = false;
    // A window the player is loading (a seek) goes first: its rebuild shares this thread.
    if (D && (D.pending || D.building)) {
      L.scheduled = true;
      setTimeout(function () { L.scheduled = false; scheduleList(); }, 50);
      return;
    }
    var t = performance.now(), from = L.built, items = document.createDocumentFragment();
    while (L.built < S.events.length && (L.built - from < 20 || performance.now() - t < SLICE_MS)) {
      items.appendChild(eventItem(S.events[L.built], L.built));
      L.built++;
    }
    list.appendChild(items);
    root.dataset.loaded = L.built;
    // The current event's row may be one of these: highlight it now.
    var cur = indexAt(S.cur);
    if (cur >= from && cur < L.built) { S.currentIndex = -1; highlight(cur); }
    scheduleList();
  }

  function listDone() {
    if (S.complete && L.built >= S.events.length && !root.dataset.complete) root.dataset.complete = '1';
  }

  function describe(e) {
    var d = e.event_data || {};
    switch (e.event_type) {
      case 'page_view': return e.page_url || '';
      case 'click': return (e.target_selector || e.target_tag || '') + (d.text ? ' “' + d.text + '”' : '') + (isRage(e) ? ' (rage ×' + d.rage + ')' : '');
      case 'input': return (e.target_selector || '') + ' = ' + (e.input_masked ? '••••' : (e.input_value || ''));
      case 'keypress': return e.key_pressed || '';
      case 'scroll': return (e.target_selector ? e.target_selector + ' ' : '') + (e.scroll_y || 0) + ' px';
      case 'error': return d.message || d.url || '';
      case 'network': return [d.method, d.url, d.status, d.duration_ms != null ? d.duration_ms + ' ms' : ''].join(' ');
      case 'custom': return d.name || '';
      case 'visibility': return d.state || '';
      default: return '';
    }
  }

  function eventItem(e, index) {
    var li = document.createElement('li');
    li.className = 'ev ' + e.event_type + (isRage(e) ? ' rage' : '');
    li.dataset.index = index;
    var time = document.createElement('span');
    time.className = 'when';
    time.textContent = fmt(e.t);
    var type = document.createElement('span');
    type.className = 'type';
    type.textContent = e.event_type;
    var what = document.createElement('span');
    what.className = 'what';
    what.textContent = describe(e);
    what.title = what.textContent;   // the whole value, also when the row is cut off
    li.append(time, type, what);
    return li;
  }

  // The server decides what a rage click is (hindsight.queries.events.rage_click) and
  // marks those events `rage: true`; the player applies no rule of its own.
  function isRage(e) {
    return e.rage === true;
  }

  function markerKind(m) {
    if (m.event_type === 'click') return m.rage ? 'rage' : 'click';
    return m.event_type;
  }

  // Up to 5,000 buttons: with a DOM recording, drawn once the first frame is (listStart).
  var markersShown = false;

  function drawMarkers() {
    if (!markersShown) return;
    markersBox.textContent = '';
    // Rarer kinds last, so they sit on top of the clicks.
    var order = { page_view: 1, click: 0, rage: 2, network: 3, error: 4 };
    var sorted = S.markers.slice().sort(function (a, b) { return order[markerKind(a)] - order[markerKind(b)]; });
    sorted.forEach(function (m) {
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'marker ' + markerKind(m);
      b.style.left = (100 * m.t / S.duration) + '%';
      b.dataset.t = m.t;
      b.dataset.kind = markerKind(m);
      b.title = fmt(m.t) + ' ' + markerKind(m).replace('_', ' ') + ' ' + (m.detail || m.target_selector || m.page_url || '');
      b.setAttribute('aria-label', b.title);
      markersBox.appendChild(b);
    });
  }

  function setDuration(ms) {
    S.duration = Math.max(1, ms);
    totalLabel.textContent = fmt(S.duration);
    drawMarkers();
  }

  function loadMore(url) {
    if (!url) { S.complete = true; loading.textContent = ''; listDone(); return; }
    loading.textContent = 'loading events… ' + S.events.length + ' / ' + S.session.event_count;
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (page) { addEvents(page.data); loadMore(page.next); })
      .catch(function () { loading.textContent = 'could not load every event'; S.complete = true; });
  }

  // ------------------------------------------------------------------ state at a moment

  function indexAt(t) {
    var lo = 0, hi = S.events.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (S.events[mid].t <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return found;
  }

  function shotFor(page, t) {
    var candidates = S.shots.filter(function (s) { return s.page_url === page; });
    if (!candidates.length) candidates = S.shots.filter(function (s) { return bare(s.page_url) === bare(page); });
    if (!candidates.length) return null;
    var best = null;
    candidates.forEach(function (s) { if (s.t <= t) best = s; });
    return best || candidates[0]; // before the first capture: the page's first screenshot
  }

  function viewport() {
    var vw = +root.dataset.viewportWidth || 0, vh = +root.dataset.viewportHeight || 0;
    return { w: vw || 1280, h: vh || 800 };
  }

  // The recorded viewport scaled to fit the player's width and the window's height (a phone's
  // tall viewport included), so the timeline and the controls under the stage stay in view.
  function layout() {
    var vp = viewport();
    var w = stage.clientWidth;
    var box = stage.getBoundingClientRect();
    var below = stage.closest('.player').getBoundingClientRect().bottom - box.bottom;
    var room = Math.max(240, window.innerHeight - (box.top + window.scrollY) - below - 16);
    var k = Math.min(w / vp.w, room / vp.h);
    var h = Math.round(vp.h * k);
    stage.style.height = h + 'px';
    canvas.width = w * (window.devicePixelRatio || 1);
    canvas.height = h * (window.devicePixelRatio || 1);
    canvas.style.width = w + 'px';
    canvas.style.height = h + 'px';
    // x: the screenshot's left edge, centred when the height decides the scale.
    return { k: k, w: w, h: h, x: Math.round((w - vp.w * k) / 2) };
  }

  var geo = null;

  function render() {
    if (!S.session) return;
    if (!geo) geo = layout();
    var i = indexAt(S.cur);
    var st = i >= 0 ? S.after[i] : { page: S.session.page_url, sy: 0, sx: 0, mx: null, my: null };
    // The picture: the DOM replay, or the page's screenshot, scrolled as the visitor's window was.
    var shot = D ? null : shotFor(st.page, S.cur);
    if (D) {
      domShow();
    } else if (shot) {
      if (S.shotId !== shot.screenshot_id) {
        img.src = shot.url;
        S.shotId = shot.screenshot_id;
        root.dataset.screenshot = shot.screenshot_id;
      }
      img.hidden = false;
      noShot.hidden = true;
      img.style.width = (geo.w - 2 * geo.x) + 'px';
      img.style.transform = 'translate(' + (geo.x - st.sx * geo.k) + 'px,' + (-st.sy * geo.k) + 'px)';
    } else {
      img.hidden = true;
      noShot.hidden = false;
      noShot.textContent = 'No screenshot of this page.';
      S.shotId = null;
      delete root.dataset.screenshot;
    }
    pageLabel.textContent = st.page || '';
    if (!D) drawOverlay(i, st);
    // Timeline and clock.
    var pct = Math.min(100, 100 * S.cur / S.duration);
    playhead.style.left = pct + '%';
    played.style.width = pct + '%';
    nowLabel.textContent = fmt(S.cur);
    root.dataset.time = Math.round(S.cur);
    root.dataset.playing = S.playing ? '1' : '0';
    highlight(i);
  }

  function drawOverlay(i, st) {
    var ctx = canvas.getContext('2d');
    var ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, geo.w, geo.h);
    ctx.translate(geo.x, 0);
    var k = geo.k;
    // The mouse trail: positions of the last moments on this page, fading.
    var pts = [];
    for (var j = i; j >= 0 && S.cur - S.events[j].t <= TRAIL_MS; j--) {
      var e = S.events[j];
      if (bare(S.after[j].page) !== bare(st.page)) break;
      if ((e.event_type === 'mouse_move' || e.event_type === 'click') && e.viewport_x != null) pts.unshift(e);
    }
    ctx.lineWidth = 2;
    for (var p = 1; p < pts.length; p++) {
      ctx.strokeStyle = 'rgba(30,107,214,' + (0.15 + 0.7 * p / pts.length) + ')';
      ctx.beginPath();
      ctx.moveTo(pts[p - 1].viewport_x * k, pts[p - 1].viewport_y * k);
      ctx.lineTo(pts[p].viewport_x * k, pts[p].viewport_y * k);
      ctx.stroke();
    }
    // Clicks of the last moment: a ripple, red for rage clicks.
    pts.forEach(function (e) {
      if (e.event_type !== 'click' || S.cur - e.t > CLICK_MS) return;
      var age = (S.cur - e.t) / CLICK_MS;
      var rage = isRage(e);
      ctx.strokeStyle = rage ? 'rgba(220,0,40,' + (1 - age) + ')' : 'rgba(255,140,0,' + (1 - age) + ')';
      ctx.fillStyle = rage ? 'rgba(220,0,40,0.35)' : 'rgba(255,140,0,0.35)';
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(e.viewport_x * k, e.viewport_y * k, 8 + 22 * age, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    });
    // The pointer.
    if (st.mx != null) {
      ctx.fillStyle = '#111';
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1.5;
      var x = st.mx * k, y = st.my * k;
      ctx.beginPath();
      ctx.moveTo(x, y); ctx.lineTo(x, y + 16); ctx.lineTo(x + 4.5, y + 12); ctx.lineTo(x + 11, y + 11);
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    }
  }

  function highlight(i) {
    if (i === S.currentIndex) return;
    var old = list.querySelector('li.current');
    if (old) old.classList.remove('current');
    S.currentIndex = i;
    var li = i >= 0 ? list.children[i] : null;
    if (!li) return;
    li.classList.add('current');
    // Scroll the list itself (not the page) so the current event stays in view.
    var top = li.offsetTop - list.offsetTop, bottom = top + li.offsetHeight;
    if (top < list.scrollTop || bottom > list.scrollTop + list.clientHeight) {
      list.scrollTop = Math.max(0, top - list.clientHeight / 3);
    }
  }


  // ------------------------------------------------------------------ DOM replay
  //
  // The recording's segments are fetched here (with the analyst's cookie) and their JSON text
  // posted to the player (it parses them: no parse and no structured clone of the events
  // here, on the main thread the player shares), which runs in a data: document inside
  // /dashboard/player: an opaque origin that can read nothing of the dashboard, under a CSP
  // that lets it fetch nothing. A seek loads the segments
  // from the last one that starts with a full snapshot at or before that moment (a seek
  // point) up to the one after it; while it plays, the next segment is appended ahead of the
  // clock, which waits at the edge of what is loaded.

  var LOOKAHEAD_MS = 20000;   // fetch the next segment when the loaded ones end this soon

  function domStart(list, playerUrl) {
    if (!D) domPlayerStart(playerUrl);
    D.segs = list.map(function (s) {
      return { n: s.segment, start: ts(s.started_at), end: ts(s.ended_at), full: s.full_snapshot, url: s.url };
    });
  }

  // The player's iframe: made as soon as the page knows there is a recording (the page says
  // so, data-first-segments, or else the recording's index does).
  function domPlayerStart(playerUrl) {
    D = {
      segs: [], from: -1, to: -1, gen: 0, pending: null, appending: false, ready: false, queue: [], loaded: false,
      starting: false, code: null, building: false,
      // The player's clock (frame, below): loads and syncs are numbered (seq); `clock` is
      // the player's latest answer; `move` counts the page's own moves of the clock (a seek,
      // a skipped inactivity, play, pause, a wait for data, a new window), after which rrweb
      // starts again at the page's moment.
      seq: 0, move: 0, clock: null, playingSent: null
    };
    img.hidden = true;
    noShot.hidden = true;
    canvas.hidden = true;
    // The page's HTML has it already when it names the first segments: loading since the
    // HTML was parsed, before this script ran.
    var frame = document.getElementById('player');
    if (!frame) {
      frame = document.createElement('iframe');
      frame.id = 'player';
      frame.className = 'player-frame';
      frame.title = 'replay of the recorded page';
      frame.setAttribute('referrerpolicy', 'no-referrer');
      frame.src = playerUrl;
      stage.appendChild(frame);
    }
    D.frame = frame;
    // rrweb's replayer, as text (the page's HTML preloads it): the player cannot fetch it
    // cheaply itself (an opaque origin has no HTTP cache), so it gets it from here.
    D.code = fetch(root.dataset.replayer, { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); });
    root.dataset.mode = 'dom';
    setTimeout(function () {
      // The replayer is a build product (make install: dashboard/static/dist/).
      if (D && !D.ready) loading.textContent = 'the replayer did not start (is dashboard/static/dist built?)';
    }, 15000);
    // The player says 'ready' until it hears from us (it may have started before this
    // script): its frames are not touched before, so no window is made for a document
    // about to be replaced.
    window.addEventListener('message', function (ev) {
      if (ev.origin !== 'null' || !D || ev.source !== domPlayer()) return;   // only our (opaque) player
      var m = ev.data || {};
      if (m.type === 'ready') {
        if (D.ready || D.starting) return;
        D.starting = true;
        // rrweb's replayer first (the player runs it; then it stops saying 'ready'), then
        // what waited for the player.
        D.code.then(function (source) {
          domPlayer().postMessage({ type: 'replayer', source: source, integrity: root.dataset.replayerIntegrity }, '*');
          D.ready = true;
          D.queue.splice(0).forEach(domPost);
          render();
        }, function (err) {
          loading.textContent = 'could not load the replayer (' + err.message + ')';
          afterFirst();
        });
      } else if (m.type === 'loaded') {
        D.loaded = true;
        D.building = false;
        root.dataset.domLoaded = String(+(root.dataset.domLoaded || 0) + 1);
        // The first frame is drawn (rrweb built it in this task): the event list after it is
        // painted, and the session's data (when it waited for the first frame) now.
        requestAnimationFrame(function () { setTimeout(listStart); });
        afterFirst();
      } else if (m.type === 'clock') {
        // rrweb's moment and when it read it (see replay_player.js), for the move the sync
        // carried.
        if (!D.clock || m.seq > D.clock.seq) D.clock = m;
      } else if (m.type === 'error') {
        D.building = false;
        D.clock = { seq: D.seq, move: D.move, running: false };   // no answer is coming: our clock runs
        loading.textContent = 'could not replay the recording: ' + m.message;
        afterFirst();
        listStart();
      }
    });
  }

  // The page said there was a recording, its index has none (deleted meanwhile): screenshots.
  function domDrop() {
    D.frame.remove();
    D = null;
    canvas.hidden = false;
    noShot.hidden = false;
    delete root.dataset.mode;
  }

  // The player's window: the data: frame inside /dashboard/player.
  function domPlayer() {
    var host = D && D.frame.contentWindow;
    return host && host.frames.length ? host.frames[0] : null;
  }

  function domPost(message) {
    if (message.type === 'load' || message.type === 'sync') {
      // Numbered: its answer ('clock') says where rrweb is.
      if (message.type === 'load') D.move++;
      message.move = D.move;
      message.seq = ++D.seq;
      D.playingSent = message.playing;
    }
    if (!D.ready) { D.queue.push(message); return; }
    if (message.type === 'load') D.building = true;   // until the player says it is drawn ('loaded', 'error')
    domPlayer().postMessage(message, '*');   // '*': the player's origin is opaque
  }

  // A segment's JSON, as text: the player parses it. The request is the one the page's
  // preloads make (no header of ours), so the first window's come from those.
  function fetchSegment(i) {
    return fetch(D.segs[i].url, { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error('segment ' + D.segs[i].n + ': ' + r.status); return r.text(); });
  }

  // The last seek point at or before `abs` (else the first segment), and the segment playing then.
  function seekPoint(abs) {
    var k = -1, cover = 0;
    for (var i = 0; i < D.segs.length && D.segs[i].start <= abs; i++) {
      cover = i;
      if (D.segs[i].full) k = i;
    }
    return { from: Math.max(0, k), cover: cover };
  }

  // `at`: the moment to show (ms since the epoch); S.t0 + S.cur unless given.
  function domWindow(from, to, at) {
    var gen = ++D.gen;
    D.pending = { from: from, to: to };
    loading.textContent = 'loading the recording…';
    var parts = [];
    for (var i = from; i <= to; i++) parts.push(fetchSegment(i));
    Promise.all(parts).then(function (texts) {
      if (!D || gen !== D.gen) return;   // a later seek won (or the recording is gone)
      D.from = from;
      D.to = to;
      D.pending = null;
      loading.textContent = '';
      root.dataset.domWindow = from + '-' + to;
      var moment = at != null && !S.session ? at : S.t0 + S.cur;
      domPost({ type: 'load', segments: texts, at: moment, playing: S.playing && !S.waiting, speed: S.speed });
      render();
    }).catch(function (err) {
      if (!D || gen !== D.gen) return;
      D.pending = null;
      loading.textContent = 'could not load the recording (' + err.message + ')';
      afterFirst();
    });
  }

  function domAppend() {
    var i = D.to + 1, gen = D.gen;
    D.appending = true;
    fetchSegment(i).then(function (text) {
      D.appending = false;
      if (gen !== D.gen || i !== D.to + 1) return;
      D.to = i;
      root.dataset.domWindow = D.from + '-' + D.to;
      domPost({ type: 'append', segment: text });
    }).catch(function (err) {
      D.appending = false;
      loading.textContent = 'could not load the recording (' + err.message + ')';
    });
  }

  // Show the moment S.cur: load the window it needs, or move the player's clock.
  function domShow() {
    var abs = S.t0 + S.cur, need = seekPoint(abs);
    var covered = D.from >= 0 && D.from <= need.from && D.to >= need.cover;
    if (!covered) {
      var to = Math.min(D.segs.length - 1, need.cover + 1);
      if (!D.pending || D.pending.from !== need.from || D.pending.to < need.cover) domWindow(need.from, to);
      return;
    }
    if (D.pending) D.gen++, D.pending = null;   // a load that is no longer needed
    // Playing, unless the clock waits for data (rrweb would run ahead of it): a change
    // of that is a move (rrweb stops, or starts again at the page's moment).
    var playing = S.playing && !S.waiting;
    if (playing !== D.playingSent) D.move++;
    // `when`: the moment S.cur was reached (frame's performance.now()), for a player that
    // starts rrweb while our clock runs by itself: it starts where our clock is by then.
    domPost({ type: 'sync', at: abs, playing: playing, speed: S.speed, when: performance.timeOrigin + S.last });
    if (S.playing && !D.appending && D.to < D.segs.length - 1 && D.segs[D.to].end - abs < LOOKAHEAD_MS * S.speed) domAppend();
  }

  // How far the clock may run: to where the loaded segments end.
  function domEdge() {
    if (D.pending || D.from < 0 || !D.ready) return S.cur;
    return D.to < D.segs.length - 1 ? D.segs[D.to + 1].start - S.t0 : Infinity;
  }

  // ------------------------------------------------------------------ playback

  // The clock. With a DOM recording, while rrweb plays, the player's clock leads and this
  // one follows it: the moment rrweb reached when it last read its clock (the player's
  // latest answer, 'clock'), plus the time since (both documents share
  // performance.timeOrigin + performance.now()). So the timeline, the event list and the
  // markers show the moment the player shows, within a frame, also when a busy machine
  // stretches the frames (rrweb's clock advances by the whole time between them; ours used
  // to stop at 250 ms a frame and fell behind it). After a move the player has not answered
  // yet (rrweb starts again at our moment, rebuilding the page), the clock waits for the
  // answer. Elsewhere (no recording, rrweb paused or past its last event, before the first
  // full snapshot) it runs by itself, at most 250 ms a frame (a hidden tab's frames stop).
  function frame() {
    if (!S.playing) return;
    // Now, not the frame's time that requestAnimationFrame gives: after a long task that
    // is the time the frame was due, long before (rrweb's clock reads performance.now()).
    var now = performance.now();
    var dt = Math.min(250, now - S.last);
    S.last = now;
    var next = S.cur + dt * S.speed, c = D && D.clock;
    if (D && D.loaded && !D.pending) {
      if (!c || c.move !== D.move) next = S.cur;
      else if (c.running) next = Math.max(S.cur, c.at - S.t0 + Math.max(0, performance.timeOrigin + now - c.when) * S.speed);
    }
    var i = indexAt(S.cur);
    var upcoming = S.events[i + 1];
    var skipTo = upcoming ? upcoming.t - IDLE_MS / 4 : 0;
    var skip = S.skip && upcoming && upcoming.t - S.cur > IDLE_MS && skipTo > next;
    if (skip) next = skipTo;
    var loadedUntil = S.events.length ? S.events[S.events.length - 1].t : 0;
    var until = S.complete ? Infinity : loadedUntil;           // wait for the next page of events
    if (D) until = Math.min(until, domEdge());                   // and for the recording
    // Waiting for data the player has (not for a window it loads): rrweb stops meanwhile.
    S.waiting = next > until && !!D && D.ready && !D.pending;
    if (next > until) next = until;
    if (skip && D && next > S.cur) D.move++;                     // rrweb starts again there
    if (next >= S.duration && S.complete) {
      S.cur = S.duration;
      pause();
      render();
      return;
    }
    S.cur = next;
    render();
    requestAnimationFrame(frame);
  }

  // Until the session's data is in (after the first frame) there is no clock to move.
  function play() {
    if (!S.session) return;
    if (S.cur >= S.duration) S.cur = 0;
    S.playing = true;
    S.waiting = false;
    S.last = performance.now();
    playBtn.textContent = '❚❚ Pause';
    playBtn.setAttribute('aria-label', 'pause');
    render(); // data-playing and the clock now, not at the next frame
    requestAnimationFrame(frame);
  }

  function pause() {
    S.playing = false;
    playBtn.textContent = '▶ Play';
    playBtn.setAttribute('aria-label', 'play');
    remember();
    render();
  }

  function seek(t) {
    if (!S.session) return;
    S.cur = Math.max(0, Math.min(S.duration, t));
    if (D) D.move++;
    remember();
    render();
  }

  function remember() {
    // The deep link to this moment: #t=seconds.
    history.replaceState(null, '', '#t=' + (S.cur / 1000).toFixed(1));
  }

  function fromHash() {
    var m = /(?:^#|&)t=(\d+(?:\.\d+)?)/.exec(location.hash);
    return m ? parseFloat(m[1]) * 1000 : null;
  }

  function setSpeed(v) {
    S.speed = v;
    speedSel.value = String(v);
  }

  function jumpMarker(dir) {
    var ts = S.markers.map(function (m) { return m.t; });
    var target = null;
    for (var i = 0; i < ts.length; i++) {
      if (dir > 0 && ts[i] > S.cur + 1) { target = ts[i]; break; }
      if (dir < 0 && ts[i] < S.cur - 1) target = ts[i];
    }
    if (target != null) seek(target);
  }

  // ------------------------------------------------------------------ wiring

  playBtn.addEventListener('click', function () { S.playing ? pause() : play(); });
  speedSel.addEventListener('change', function () { setSpeed(parseFloat(speedSel.value)); });
  skipBox.addEventListener('change', function () { S.skip = skipBox.checked; });
  markersBox.addEventListener('click', function (ev) {
    var b = ev.target.closest('.marker');
    if (!b) return;
    ev.stopPropagation();
    seek(+b.dataset.t);
  });
  timeline.addEventListener('click', function (ev) {
    var box = timeline.getBoundingClientRect();
    seek(S.duration * (ev.clientX - box.left) / box.width);
  });
  list.addEventListener('click', function (ev) {
    var li = ev.target.closest('li');
    if (!li) return;
    // A click jumps to the event and opens (or closes) its row: the whole value, wrapped.
    li.classList.toggle('open');
    seek(S.events[+li.dataset.index].t);
  });
  window.addEventListener('hashchange', function () {
    var t = fromHash();
    if (t != null && Math.abs(t - S.cur) > 50) seek(t);
  });
  window.addEventListener('resize', function () { geo = null; render(); });
  document.addEventListener('keydown', function (ev) {
    var tag = (ev.target.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'select' || tag === 'textarea' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var i = SPEEDS.indexOf(S.speed);
    switch (ev.key) {
      case ' ': case 'k': S.playing ? pause() : play(); break;
      case 'ArrowLeft': seek(S.cur - SEEK_STEP); break;
      case 'ArrowRight': seek(S.cur + SEEK_STEP); break;
      case ',': jumpMarker(-1); break;
      case '.': jumpMarker(1); break;
      case '+': case '=': setSpeed(SPEEDS[Math.min(SPEEDS.length - 1, i + 1)]); break;
      case '-': setSpeed(SPEEDS[Math.max(0, i - 1)]); break;
      case 's': skipBox.checked = S.skip = !S.skip; break;
      case 'Home': seek(0); break;
      case 'End': seek(S.duration); break;
      default: return;
    }
    ev.preventDefault();
  });

  function getJson(url) {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
  }

  // ------------------------------------------------------------------ tail mode
  //
  // A session still going on (an event in the last 5 minutes, not ended) is followed as it
  // grows: every few seconds the page asks how many events it has (/sessions/{id}/live),
  // loads the new ones once the first pages are in, and appends new recording segments.
  // The "live" badge shows while it lasts.

  var TAIL_MS = 2000;

  function tailMarkers(rows) {
    rows.forEach(function (e) {
      var failed = e.event_type === 'network' && e.event_data && (e.event_data.status === 0 || e.event_data.status >= 400);
      if (e.event_type === 'page_view' || e.event_type === 'error' || failed || isRage(e)) {
        S.markers.push({ t: e.t, timestamp: e.timestamp, event_type: e.event_type, rage: isRage(e) });
      }
    });
    if (rows.length) drawMarkers();
  }

  function tailSegments() {
    if (!D) return Promise.resolve();
    return getJson(root.dataset.recording).then(function (answer) {
      var last = D.segs.length ? D.segs[D.segs.length - 1].n : -1;
      (answer.segments || []).forEach(function (seg) {
        if (seg.segment <= last) return;
        D.segs.push({ n: seg.segment, start: ts(seg.started_at), end: ts(seg.ended_at), full: seg.full_snapshot, url: seg.url });
        if (ts(seg.ended_at) - S.t0 > S.duration) setDuration(ts(seg.ended_at) - S.t0);
      });
    });
  }

  function tail() {
    var badge = el('live-badge');
    getJson(root.dataset.live).then(function (state) {
      badge.hidden = !state.live;
      // Its events come from a read replica (docs/SCALING.md): say when they lag behind.
      badge.textContent = state.behind_seconds >= 1 ? 'live · ' + Math.round(state.behind_seconds) + ' s behind' : 'live';
      root.dataset.tail = state.live ? 'live' : 'ended';
      var more = state.event_count > S.events.length && S.complete;
      var next = more ? getJson(root.dataset.events + '?offset=' + S.events.length + '&limit=1000') : null;
      // An ended session's segments were all listed when the page loaded.
      return Promise.all([next, state.live ? tailSegments() : null]).then(function (answers) {
        var page = answers[0];
        if (page && page.data.length) {
          var from = S.events.length;
          addEvents(page.data);
          tailMarkers(S.events.slice(from));
          if (ts(state.last_activity_at) - S.t0 > S.duration) setDuration(ts(state.last_activity_at) - S.t0);
          render();
        }
        if (state.live) setTimeout(tail, TAIL_MS);
      });
    }).catch(function () { setTimeout(tail, TAIL_MS * 5); });
  }

  // The session (first) and its recording's index: no recording (or none readable) means the
  // screenshot replay.
  // With a recording, the first frame comes first. The page's HTML holds the player (rrweb's
  // replayer, posted to it from here), loading while the HTML is parsed, and names (and
  // preloads) the recording's first segment, which starts with its first full snapshot.
  // Without a deep link the first frame is the recording's start: that segment is the first
  // window, and goes to the player as soon as it is in (the next one is appended as it
  // plays, as for any window). Any moment up to
  // the first segment's start shows the same frame (the first full snapshot): `at` 0. The
  // session's JSON (its events and markers: hundreds of KB for a long visit, a busy server
  // worker and a JSON parse on the main thread the player shares) and the recording's index
  // are asked for once the player has drawn that frame (or failed, or after FIRST_WAIT_MS);
  // a deep link needs the index first (the seek point), so then they load at once.
  var FIRST_WAIT_MS = 2000;
  var rest = loadRest;
  function afterFirst() {
    if (!rest) return;
    var load = rest;
    rest = null;
    load();
  }
  var firstSegments = (root.dataset.firstSegments || '').split(' ').filter(Boolean);
  if (firstSegments.length) {
    domPlayerStart(root.dataset.player);
    if (fromHash() == null) {
      // Stand-ins until the index is in (domStart): the window's segments, by number.
      D.segs = firstSegments.map(function (n) { return { n: +n, url: root.dataset.recording + '/' + n }; });
      domWindow(0, D.segs.length - 1, 0);
      setTimeout(afterFirst, FIRST_WAIT_MS);
    } else {
      afterFirst();
    }
  } else {
    afterFirst();
  }

  function loadRest() {
    var recording = getJson(root.dataset.recording)
      .then(function (answer) { return answer.segments || []; }, function () { return []; })
      .then(function (segments) {
        if (!segments.length && D) domDrop();
        if (segments.length) {
          domStart(segments, root.dataset.player);
          // The page did not name them (recorded since it was made): the first window now.
          if (fromHash() == null && D.from < 0 && !D.pending) domWindow(0, Math.min(D.segs.length - 1, 1), 0);
        }
        return segments;
      });
    Promise.all([getJson(root.dataset.src), recording])
      .then(function (answers) {
        var data = answers[0], segments = answers[1];
        S.session = data.session;
        var first = data.events.length ? ts(data.events[0].timestamp) : Infinity;
        var firstSegment = segments.length ? ts(segments[0].started_at) : Infinity;
        S.t0 = Math.min(ts(data.session.started_at), first, firstSegment);
        if (!segments.length) root.dataset.mode = 'screenshots';
        if (!D) markersShown = true;   // no player to wait for: the timeline's markers at once
        S.shots = data.screenshots.map(function (s) { s.t = ts(s.timestamp) - S.t0; return s; });
        S.markers = data.markers.map(function (m) { m.t = ts(m.timestamp) - S.t0; return m; });
        var lastMarker = S.markers.length ? S.markers[S.markers.length - 1].t : 0;
        var lastSegment = segments.length ? Math.max.apply(null, segments.map(function (s) { return ts(s.ended_at); })) - S.t0 : 0;
        setDuration(Math.max(ts(data.session.last_activity_at) - S.t0, lastMarker, lastSegment));
        addEvents(data.events);
        root.dataset.ready = '1';
        var t = fromHash();
        if (t != null) S.cur = Math.min(t, S.duration);
        render();
        // The event list's rows: after the first frame (the player says when it is drawn).
        if (D) setTimeout(listStart, 3000); else listStart();
        loadMore(data.events_next);
        if (root.dataset.live) tail();
      })
      .catch(function (err) {
        noShot.textContent = 'Could not load this session (' + err.message + ').';
      });
  }
})();
