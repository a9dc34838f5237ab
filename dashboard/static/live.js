// The live page: the snapshot (?format=json) drawn, then kept current by the account's
// Server-Sent Events stream (/dashboard/live/stream, hindsight.live). Text from events is
// only ever set as textContent, never parsed as HTML.
(function () {
  'use strict';

  var root = document.getElementById('live');
  if (!root) return;

  var MAX_EVENTS = 500;       // kept in the list (newest first)
  var RATE_SECONDS = 600, BUCKET = 10;
  var SVG = 'http://www.w3.org/2000/svg';

  var el = function (id) { return document.getElementById(id); };
  var stateBadge = el('live-state'), list = el('live-events'), visitorsBody = el('visitors');
  var countLabel = el('visitor-count'), hostsList = el('hosts'), chart = el('rate-chart');
  var rateNow = el('rate-now'), pauseBtn = el('pause'), pausedNote = el('paused-note');
  var fType = el('filter-type'), fHost = el('filter-host'), fSession = el('filter-session');

  var S = {
    events: [], pending: [], paused: false, visitors: new Map(), rate: new Map(),
    activeMs: 300000, clockSkew: 0, source: null, cursor: null
  };

  function setState(state, text) {
    stateBadge.dataset.state = state;
    stateBadge.textContent = text;
    stateBadge.className = 'badge ' + state;
  }

  // ------------------------------------------------------------------ events

  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? '' : d.toISOString().slice(11, 19);
  }

  function describe(e) {
    var d = e.event_data || {};
    switch (e.event_type) {
      case 'error': return d.message || d.url || '';
      case 'network': return [d.method, d.url, d.status, d.duration_ms != null ? d.duration_ms + ' ms' : ''].join(' ');
      case 'click': return (e.target_selector || e.target_tag || '') + ' · ' + (e.page_url || '');
      case 'keypress': return e.key_pressed || '';
      case 'custom': return d.name || '';
      case 'visibility': return d.state || '';
      default: return e.page_url || '';
    }
  }

  function matches(e) {
    var type = fType.value, host = fHost.value.trim().toLowerCase(), session = fSession.value.trim().toLowerCase();
    if (type === 'problems' ? !e.problem : (type && e.event_type !== type)) return false;
    if (host && (e.host || '').toLowerCase().indexOf(host) < 0) return false;
    if (session && String(e.session_id).toLowerCase().indexOf(session) !== 0) return false;
    return true;
  }

  function eventItem(e) {
    var li = document.createElement('li');
    li.className = 'ev ' + e.event_type + (e.problem ? ' problem' : '');
    li.dataset.session = e.session_id;
    li.dataset.type = e.event_type;
    var when = document.createElement('span');
    when.className = 'when';
    when.textContent = clock(e.timestamp);
    var type = document.createElement('span');
    type.className = 'type';
    type.textContent = e.event_type;
    var host = document.createElement('span');
    host.className = 'host';
    host.textContent = e.host || '';
    var link = document.createElement('a');
    link.href = root.dataset.sessions + e.session_id;
    link.textContent = String(e.session_id).slice(0, 8);
    var what = document.createElement('span');
    what.className = 'what';
    what.textContent = describe(e);
    what.title = what.textContent;
    li.append(when, type, host, link, what);
    return li;
  }

  function renderEvents() {
    var frag = document.createDocumentFragment();
    S.events.forEach(function (e) { if (matches(e)) frag.appendChild(eventItem(e)); });
    list.textContent = '';
    list.appendChild(frag);
    list.dataset.count = S.events.length;
  }

  // Newest first: `rows` arrive oldest first.
  function addEvents(rows) {
    if (!rows.length) return;
    if (S.paused) {
      S.pending = S.pending.concat(rows);
      pausedNote.textContent = S.pending.length + ' new while paused';
      return;
    }
    var frag = document.createDocumentFragment();
    for (var i = rows.length - 1; i >= 0; i--) {
      S.events.unshift(rows[i]);
      if (matches(rows[i])) frag.appendChild(eventItem(rows[i]));
    }
    list.insertBefore(frag, list.firstChild);
    if (S.events.length > MAX_EVENTS) {
      S.events.length = MAX_EVENTS;
      while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
    }
    list.dataset.count = S.events.length;
  }

  function togglePause() {
    S.paused = !S.paused;
    pauseBtn.textContent = S.paused ? 'Resume' : 'Pause';
    pauseBtn.setAttribute('aria-pressed', S.paused ? 'true' : 'false');
    root.dataset.paused = S.paused ? 'true' : 'false';
    if (!S.paused) {
      var rows = S.pending;
      S.pending = [];
      pausedNote.textContent = '';
      addEvents(rows);
    } else {
      pausedNote.textContent = 'paused';
    }
  }

  // ------------------------------------------------------------------ visitors

  function serverNow() { return Date.now() + S.clockSkew; }

  function updateVisitor(v) {
    S.visitors.set(v.session_id, v);
  }

  function duration(s) {
    s = Math.max(0, Math.round(s || 0));
    var m = Math.floor(s / 60), h = Math.floor(m / 60);
    if (h) return h + 'h ' + String(m % 60).padStart(2, '0') + 'm';
    if (m) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
    return s + 's';
  }

  function renderVisitors() {
    var cutoff = serverNow() - S.activeMs;
    S.visitors.forEach(function (v, id) {
      if (Date.parse(v.last_activity_at) < cutoff || v.ended_at) S.visitors.delete(id);
    });
    var rows = Array.from(S.visitors.values()).sort(function (a, b) {
      return Date.parse(b.last_activity_at) - Date.parse(a.last_activity_at);
    });
    var frag = document.createDocumentFragment();
    var hosts = new Map();
    rows.forEach(function (v) {
      hosts.set(v.host, (hosts.get(v.host) || 0) + 1);
      var tr = document.createElement('tr');
      tr.dataset.session = v.session_id;
      var cells = [null, v.host, v.current_page || '', [v.device_type, v.browser].filter(Boolean).join(' '),
        duration(v.duration_seconds), String(v.event_count)];
      cells.forEach(function (text, i) {
        var td = document.createElement('td');
        if (i === 0) {
          var a = document.createElement('a');
          a.href = root.dataset.sessions + v.session_id;
          a.textContent = String(v.session_id).slice(0, 8);
          td.appendChild(a);
        } else {
          td.textContent = text;
        }
        if (i === 2) td.className = 'url';
        if (i >= 4) td.className = 'num';
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    if (!rows.length) {
      var tr = document.createElement('tr');
      tr.className = 'none';
      var td = document.createElement('td');
      td.colSpan = 6;
      td.className = 'empty';
      td.textContent = 'nobody right now';
      tr.appendChild(td);
      frag.appendChild(tr);
    }
    visitorsBody.textContent = '';
    visitorsBody.appendChild(frag);
    countLabel.textContent = String(rows.length);
    hostsList.textContent = '';
    Array.from(hosts.entries()).sort(function (a, b) { return b[1] - a[1]; }).forEach(function (h) {
      var li = document.createElement('li');
      var name = document.createElement('span');
      name.className = 'host';
      name.textContent = h[0];
      var n = document.createElement('strong');
      n.textContent = String(h[1]);
      li.append(name, ' ', n);
      hostsList.appendChild(li);
    });
  }

  // ------------------------------------------------------------------ ingestion rate

  function bucketOf(ms) { return Math.floor(ms / 1000 / BUCKET) * BUCKET; }

  function countRate(at, counts) {
    var b = bucketOf(Date.parse(at));
    var cur = S.rate.get(b) || { events: 0, batches: 0, rejected: 0 };
    cur.events += counts.events;
    cur.batches += counts.batches;
    S.rate.set(b, cur);
  }

  function renderRate() {
    var end = bucketOf(serverNow());
    var n = RATE_SECONDS / BUCKET, series = [], peak = 0, events = 0, batches = 0, rejected = 0;
    for (var i = n - 1; i >= 0; i--) {
      var b = end - i * BUCKET, v = S.rate.get(b) || { events: 0, batches: 0, rejected: 0 };
      series.push([b, v]);
      peak = Math.max(peak, v.events, v.rejected || 0);
    }
    S.rate.forEach(function (v, b) { if (b < end - RATE_SECONDS) S.rate.delete(b); });
    chart.textContent = '';
    series.forEach(function (s, i) {
      var h = peak ? 108 * s[1].events / peak : 0;
      var r = document.createElementNS(SVG, 'rect');
      r.setAttribute('x', i * 10);
      r.setAttribute('y', 110 - h);
      r.setAttribute('width', 9);
      r.setAttribute('height', h);
      var t = document.createElementNS(SVG, 'title');
      t.textContent = new Date(s[0] * 1000).toISOString().slice(11, 19) + ': ' + s[1].events + ' events, ' + s[1].batches + ' batches';
      r.appendChild(t);
      chart.appendChild(r);
      if (s[1].rejected) {  // refused writes: a thin red bar in the same bucket
        var q = document.createElementNS(SVG, 'rect'), hq = 108 * s[1].rejected / peak;
        q.setAttribute('class', 'refused');
        q.setAttribute('x', i * 10 + 3);
        q.setAttribute('y', 110 - hq);
        q.setAttribute('width', 4);
        q.setAttribute('height', hq);
        var tq = document.createElementNS(SVG, 'title');
        tq.textContent = s[1].rejected + ' refused writes';
        q.appendChild(tq);
        chart.appendChild(q);
      }
    });
    // The last full bucket's rate.
    var last = series[series.length - 2][1];
    series.forEach(function (s) { events += s[1].events; batches += s[1].batches; rejected += s[1].rejected || 0; });
    rateNow.textContent = (last.events / BUCKET).toFixed(1) + ' events/s, ' + (last.batches / BUCKET).toFixed(2) +
      ' batches/s now · ' + (events / RATE_SECONDS).toFixed(1) + ' events/s, ' +
      (batches / RATE_SECONDS).toFixed(2) + ' batches/s, ' + (rejected / RATE_SECONDS).toFixed(2) +
      ' refused/s over 10 minutes';
  }

  // ------------------------------------------------------------------ snapshot and stream

  function applySnapshot(snap) {
    S.clockSkew = Date.parse(snap.now) - Date.now();
    S.activeMs = (snap.active_seconds || 300) * 1000;
    S.cursor = snap.cursor;
    S.visitors = new Map();
    snap.visitors.forEach(updateVisitor);
    S.events = snap.events.slice(0, MAX_EVENTS);
    S.pending = [];
    S.rate = new Map();
    snap.rate.series.forEach(function (b) {
      S.rate.set(bucketOf(Date.parse(b.bucket)), { events: b.events, batches: b.batches, rejected: b.rejected });
    });
    renderEvents();
    renderVisitors();
    renderRate();
  }

  function onEvents(msg) {
    var data = JSON.parse(msg.data);
    data.visitors.forEach(updateVisitor);
    countRate(data.at, data.counts);
    addEvents(data.events);
    renderVisitors();
    root.dataset.messages = String(Number(root.dataset.messages || 0) + 1);
  }

  function connect() {
    if (S.source) S.source.close();
    var url = root.dataset.stream + (S.cursor ? '?after=' + encodeURIComponent(S.cursor) : '');
    var source = new EventSource(url);
    S.source = source;
    source.addEventListener('events', onEvents);
    source.addEventListener('reset', function () { load(); });
    source.onopen = function () { setState('live', 'live'); };
    source.onerror = function () {
      setState('reconnecting', source.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting…');
      if (source.readyState === EventSource.CLOSED) setTimeout(load, 5000);  // e.g. logged out: 401
    };
  }

  function load() {
    fetch(root.dataset.src, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (!r.ok) throw new Error('snapshot: HTTP ' + r.status);
        return r.json();
      })
      .then(function (snap) { applySnapshot(snap); connect(); })
      .catch(function () { setState('reconnecting', 'offline'); setTimeout(load, 5000); });
  }

  pauseBtn.addEventListener('click', togglePause);
  [fType, fHost, fSession].forEach(function (input) { input.addEventListener('input', renderEvents); });
  setInterval(function () { renderVisitors(); renderRate(); }, 5000);
  // Refused writes are not in the stream (they are counted per process and written every
  // 2 s): their buckets are read again from the snapshot every 30 s.
  setInterval(function () {
    if (S.paused) return;
    fetch(root.dataset.src, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (snap) {
        if (!snap) return;
        snap.rate.series.forEach(function (b) {
          var key = bucketOf(Date.parse(b.bucket)), cur = S.rate.get(key);
          if (cur) cur.rejected = b.rejected;
          else if (b.rejected) S.rate.set(key, { events: 0, batches: 0, rejected: b.rejected });
        });
        renderRate();
      })
      .catch(function () { /* the next round tries again */ });
  }, 30000);
  load();
})();
