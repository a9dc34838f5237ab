// The session player: the screenshot of the page the visitor was on, scrolled where they
// were, with their clicks and mouse trail drawn over it; a timeline with markers; the event
// list in step. Plain JavaScript, no library. Text from the recording is only ever set as
// textContent or an attribute value, never parsed as HTML.
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

  var S = {
    session: null, t0: 0, duration: 1, events: [], shots: [], markers: [],
    // Per event, the state after it: page URL, document scroll, mouse position.
    after: [], complete: false, cur: 0, playing: false, speed: 1, skip: true,
    last: 0, shotId: null, currentIndex: -1
  };

  function ts(s) { return Date.parse(s); }
  function fmt(ms) {
    var s = Math.max(0, Math.floor(ms / 1000)), m = Math.floor(s / 60), h = Math.floor(m / 60);
    var mm = h ? String(m % 60).padStart(2, '0') : String(m);
    return (h ? h + ':' : '') + mm + ':' + String(s % 60).padStart(2, '0');
  }
  function bare(url) { return (url || '').split('#')[0]; }

  // ------------------------------------------------------------------ data

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
      list.appendChild(eventItem(e, S.events.length - 1));
    }
    root.dataset.loaded = S.events.length;
    var lastT = S.events.length ? S.events[S.events.length - 1].t : 0;
    if (lastT > S.duration) setDuration(lastT);
  }

  function describe(e) {
    var d = e.event_data || {};
    switch (e.event_type) {
      case 'page_view': return e.page_url || '';
      case 'click': return (e.target_selector || e.target_tag || '') + (d.text ? ' “' + d.text + '”' : '') + (d.rage ? ' (rage ×' + d.rage + ')' : '');
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
    li.append(time, type, what);
    return li;
  }

  function isRage(e) {
    var r = e.event_data && e.event_data.rage;
    return e.event_type === 'click' && r != null && r !== false && r !== 0 && r !== '0' && r !== 'false';
  }

  function markerKind(m) {
    if (m.event_type === 'click') return m.rage ? 'rage' : 'click';
    return m.event_type;
  }

  function drawMarkers() {
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
    if (!url) { S.complete = true; loading.textContent = ''; root.dataset.complete = '1'; return; }
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

  function layout() {
    var vp = viewport();
    var w = stage.clientWidth;
    var h = Math.round(w * vp.h / vp.w);
    stage.style.height = h + 'px';
    canvas.width = w * (window.devicePixelRatio || 1);
    canvas.height = h * (window.devicePixelRatio || 1);
    canvas.style.width = w + 'px';
    canvas.style.height = h + 'px';
    return { k: w / vp.w, w: w, h: h };
  }

  var geo = null;

  function render() {
    if (!S.session) return;
    if (!geo) geo = layout();
    var i = indexAt(S.cur);
    var st = i >= 0 ? S.after[i] : { page: S.session.page_url, sy: 0, sx: 0, mx: null, my: null };
    // The picture: the page's screenshot, scrolled as the visitor's window was.
    var shot = shotFor(st.page, S.cur);
    if (shot) {
      if (S.shotId !== shot.screenshot_id) {
        img.src = shot.url;
        S.shotId = shot.screenshot_id;
        root.dataset.screenshot = shot.screenshot_id;
      }
      img.hidden = false;
      noShot.hidden = true;
      img.style.width = geo.w + 'px';
      img.style.transform = 'translate(' + (-st.sx * geo.k) + 'px,' + (-st.sy * geo.k) + 'px)';
    } else {
      img.hidden = true;
      noShot.hidden = false;
      noShot.textContent = 'No screenshot of this page.';
      S.shotId = null;
      delete root.dataset.screenshot;
    }
    pageLabel.textContent = st.page || '';
    drawOverlay(i, st);
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

  // ------------------------------------------------------------------ playback

  function frame(now) {
    if (!S.playing) return;
    var dt = Math.min(250, now - S.last);
    S.last = now;
    var next = S.cur + dt * S.speed;
    var i = indexAt(S.cur);
    var upcoming = S.events[i + 1];
    if (S.skip && upcoming && upcoming.t - S.cur > IDLE_MS) next = Math.max(next, upcoming.t - IDLE_MS / 4);
    var loadedUntil = S.events.length ? S.events[S.events.length - 1].t : 0;
    if (!S.complete && next > loadedUntil) next = loadedUntil; // wait for the next page of events
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

  function play() {
    if (S.cur >= S.duration) S.cur = 0;
    S.playing = true;
    S.last = performance.now();
    playBtn.textContent = '❚❚ Pause';
    playBtn.setAttribute('aria-label', 'pause');
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
    S.cur = Math.max(0, Math.min(S.duration, t));
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
    if (li) seek(S.events[+li.dataset.index].t);
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

  fetch(root.dataset.src, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
    .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
    .then(function (data) {
      S.session = data.session;
      var first = data.events.length ? ts(data.events[0].timestamp) : Infinity;
      S.t0 = Math.min(ts(data.session.started_at), first);
      S.shots = data.screenshots.map(function (s) { s.t = ts(s.timestamp) - S.t0; return s; });
      S.markers = data.markers.map(function (m) { m.t = ts(m.timestamp) - S.t0; return m; });
      var lastMarker = S.markers.length ? S.markers[S.markers.length - 1].t : 0;
      setDuration(Math.max(ts(data.session.last_activity_at) - S.t0, lastMarker));
      addEvents(data.events);
      root.dataset.ready = '1';
      var t = fromHash();
      if (t != null) S.cur = Math.min(t, S.duration);
      render();
      loadMore(data.events_next);
    })
    .catch(function (err) {
      noShot.textContent = 'Could not load this session (' + err.message + ').';
    });
})();
