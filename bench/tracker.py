"""tracker.js benchmark: main-thread cost per recorded event and of a screenshot, and the
bundle size, side by side with rrweb's recorder recording the same visit.

One run, one machine, one headless Chromium (Debian's), the same demo page:

1. starts a throw-away TimescaleDB cluster, the API (`hindsight serve`) and three copies of
   the demo site: with no recorder, with tracker.js (screenshots off: they are measured
   apart), and with rrweb's `record()` (bundled by the same esbuild, its events shipped
   every 5 s as a tracker would);
2. scripted visit: the same mouse moves, clicks, typing and scrolling in each, twice per
   page load (the first pays for compiling the recorder's functions, the second is the
   steady state), several rounds in alternating order; V8's sampling CPU profiler (50 µs)
   gives the main-thread time spent in the recorder's script (what it calls included),
   divided by the events it recorded; Chromium's TaskDuration is kept as a cross-check;
3. dispatch loop: 1,000 rounds of a click, a navigation key, a keystroke into a text field
   and a mouse move, dispatched in a tight loop and timed with performance.now() (shipping
   the recorded events included), minus the same loop without a recorder, divided by the
   events the recorder kept (the work on events it skips or merges counts too);
4. one screenshot (tracker.js's lazy chunk: html2canvas + masking + JPEG encoding) and, for
   comparison, one rrweb full snapshot (its picture of the page), main-thread time each;
5. DOM recording (tracker.js's lazy record chunk: rrweb's recorder with tracker.js's masking,
   its events serialized into segments): the main-thread time of a page load spent in the
   chunk (its first full snapshot included, CPU profile), and of one full snapshot on the
   demo page and on the demo page with 5,000 more list items, next to plain rrweb's;
6. bundle sizes, raw and gzip, from tracker/dist/manifest.json;
7. the demo single-page app (tracker/demo/app.html, six route changes) with tracker.js's
   defaults, this build against an earlier one (`--against`, default HEAD: built from
   `git archive` into a temporary directory and served apart) in alternating order, a new
   account each round (its first visit takes the screenshots the server wants, its second
   finds most of them there): long tasks (PerformanceObserver) and, from a Chromium trace
   and V8's CPU profile of the same visit, each main-thread task's wall and CPU time and the
   tracker's own CPU time in it;
8. writes its three sections of docs/BENCHMARKS.md (between markers; other sections stay).

    .venv/bin/python bench/tracker.py             # a few minutes
    .venv/bin/python bench/tracker.py --quick     # one round, prints, does not write the doc
    .venv/bin/python bench/tracker.py --spa-only --rounds 4   # step 7 alone, writes its section
"""

from __future__ import annotations

import argparse
import collections
import http.server
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
from doc_sections import write_section as write_doc_section  # noqa: E402

from browser import ApiServer, chromium, ensure_tracker_built  # noqa: E402
from hindsight.demo import DemoSite  # noqa: E402

DOC = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- bench/tracker.py: begin -->", "<!-- bench/tracker.py: end -->"
RECORDING_SECTION = "bench/tracker.py recording"
SPA_SECTION = "bench/tracker.py spa"
VARIANTS = ("none", "hindsight", "rrweb")
LARGE_ITEMS = 5000  # list items added for the large page
LOOP = 1000  # rounds of (click, key, keystroke, mouse move) in the dispatch loop
TARGET_EVENT_MS = 0.05
TARGET_GZIP = 6 * 1024


@dataclass
class Variant:
    name: str
    visit_task_ms: list[float] = field(default_factory=list)
    visit_self_ms: list[float] = field(default_factory=list)
    cold_self_ms: list[float] = field(default_factory=list)
    visit_events: list[int] = field(default_factory=list)
    loop_ms: list[float] = field(default_factory=list)
    loop_events: list[int] = field(default_factory=list)
    picture_ms: list[float] = field(default_factory=list)


@dataclass
class Recording:
    """DOM recording: tracker.js's record chunk next to plain rrweb (milliseconds)."""
    load_ms: list[float] = field(default_factory=list)  # page load, in the chunk's code
    snapshot_ms: dict[str, list[float]] = field(default_factory=dict)  # "tracker demo" -> runs
    # Long tasks (>= 50 ms) in the 4 s from one full snapshot of the large page, per recorder:
    # one list of durations per run (the snapshot's own task included).
    large_tasks: dict[str, list[list[int]]] = field(default_factory=dict)
    # The demo SPA (tracker/demo/app.html), per variant ("none", "after: first visit",
    # "before: second visit", ...): one SpaRun per visit.
    spa: dict[str, list[SpaRun]] = field(default_factory=dict)

    def add(self, key: str, ms: float) -> None:
        self.snapshot_ms.setdefault(key, []).append(ms)

    def median(self, key: str) -> float:
        return statistics.median(self.snapshot_ms[key])


def metrics(cdp) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def recorder_time_ms(profile: dict, script_suffix: str) -> float:
    """Main-thread time spent in the recorder: samples of V8's CPU profile whose stack
    holds a frame of its script (so what it calls, JSON.stringify included, counts)."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    inside: dict[int, bool] = {}

    def in_recorder(node_id: int) -> bool:
        if node_id not in inside:
            own = nodes[node_id]["callFrame"]["url"].endswith(script_suffix)
            inside[node_id] = own or (node_id in parent and in_recorder(parent[node_id]))
        return inside[node_id]

    deltas = profile["timeDeltas"][1:] + [0]  # sample i lasts until sample i + 1
    return sum(d for node_id, d in zip(profile["samples"], deltas, strict=True)
               if in_recorder(node_id)) / 1000


SCRIPTS = {"hindsight": "/tracker.js", "rrweb": "/bench/rrweb-record.js"}


def recorded(page, variant: str) -> int:
    if variant == "hindsight":
        return page.evaluate("hindsight.health().seq")
    if variant == "rrweb":
        return page.evaluate("window.__rrweb.events.length + window.__rrweb.shipped")
    return 0


def scripted_visit(page) -> None:
    """The same visit for every recorder: mouse moves, clicks, typing, scrolling."""
    for i in range(40):
        page.mouse.move(100 + i * 15, 200 + (i % 7) * 20)
        page.wait_for_timeout(25)
    page.click("#name")
    page.keyboard.type("Grace Hopper", delay=15)
    page.click("#email")
    page.keyboard.type("grace@example.com", delay=15)
    page.keyboard.press("Tab")
    page.keyboard.type("correct horse", delay=15)
    page.click("#notes")
    page.keyboard.type("A note about the order.", delay=15)
    page.click("#terms")
    page.locator("#buy").scroll_into_view_if_needed()
    for _ in range(3):
        page.click("#buy")
    for _ in range(4):
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(120)
    page.keyboard.press("End")
    page.wait_for_timeout(400)


DISPATCH = """n => {
  // A synthetic, denser copy of the visit: per round a click, a navigation key, a
  // keystroke into a text field and a mouse move; the recorders decide what they keep.
  const buy = document.getElementById('buy'), notes = document.getElementById('notes');
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    buy.dispatchEvent(new MouseEvent('click', {bubbles: true, clientX: 10 + i % 300, clientY: 20 + i % 200, detail: 1}));
    document.body.dispatchEvent(new KeyboardEvent('keydown', {bubbles: true, key: 'ArrowDown'}));
    notes.value += 'x';
    notes.dispatchEvent(new InputEvent('input', {bubbles: true, data: 'x', inputType: 'insertText'}));
    document.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: i % 500, clientY: i % 300}));
  }
  if (window.hindsight && hindsight.flush) hindsight.flush();            // batches serialized, sent
  if (window.__rrweb) { const b = window.__rrweb.events.splice(0); window.__rrweb.shipped += b.length;
    navigator.sendBeacon('/bench/sink', JSON.stringify(b)); }
  return performance.now() - t0;
}"""

SCREENSHOT = """async () => {
  await new Promise((ok, fail) => { if (window.__hindsightCapture) return ok();
    const s = document.createElement('script'); s.src = document.querySelector('script[src$="tracker.js"]').src.replace('tracker.js', 'tracker/' + CHUNK);
    s.onload = ok; s.onerror = fail; document.head.appendChild(s); });
  // tracker.js's defaults: every field masked.
  const shot = await window.__hindsightCapture.shoot({mask: '', maskAll: true, maskText: false},
                                                      {maxWidth: 1024, format: 'jpeg', quality: 0.6});
  return shot ? shot.image_data.length : 0;
}"""


def measure_visit(browser, site: DemoSite, variant: Variant) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(site.url() + "/")
    page.wait_for_load_state("load")
    page.wait_for_timeout(600)  # the recorder's start-up is not part of the visit
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 50})  # microseconds
    for run in ("cold", "warm"):
        # The same visit twice on one page load: the first also pays for compiling the
        # recorder's functions on their first call; the second is the steady state.
        before_events = recorded(page, variant.name)
        cdp.send("Profiler.start")
        before = metrics(cdp)
        scripted_visit(page)
        after = metrics(cdp)
        profile = cdp.send("Profiler.stop")["profile"]
        spent = recorder_time_ms(profile, SCRIPTS[variant.name]) if variant.name in SCRIPTS else 0.0
        events = recorded(page, variant.name) - before_events
        if run == "cold":
            variant.cold_self_ms.append(spent)
            continue
        variant.visit_task_ms.append((after["TaskDuration"] - before["TaskDuration"]) * 1000)
        variant.visit_self_ms.append(spent)
        variant.visit_events.append(events)

    page.goto(site.url() + "/")
    page.wait_for_timeout(600)
    before_events = recorded(page, variant.name)
    variant.loop_ms.append(page.evaluate(DISPATCH, LOOP))
    variant.loop_events.append(recorded(page, variant.name) - before_events)
    context.close()


def measure_pictures(browser, site: DemoSite, variant: Variant, chunk: str, rounds: int) -> None:
    if variant.name == "none":
        return
    for _ in range(rounds):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(site.url() + "/")
        page.wait_for_timeout(800)
        before = metrics(cdp)
        if variant.name == "hindsight":
            size = page.evaluate(SCREENSHOT.replace("CHUNK", repr(chunk)))
            assert size > 1000, "the screenshot was taken"
        else:
            page.evaluate("rrwebRecord.takeFullSnapshot()")
        after = metrics(cdp)
        variant.picture_ms.append((after["TaskDuration"] - before["TaskDuration"]) * 1000)
        context.close()


# One synchronous full snapshot, timed in the page: rrweb serializes the DOM (tracker.js's
# chunk also masks every text node and field and turns each event into segment JSON).
SNAPSHOT = """recorder => {
  const take = recorder == 'tracker' ? () => window.__hindsightRecord.record.takeFullSnapshot()
                                     : () => rrwebRecord.takeFullSnapshot();
  const t0 = performance.now();
  take();
  return performance.now() - t0;
}"""
GROW = """n => {
  const items = [];
  for (let i = 0; i < n; i++) items.push('<li class="row"><b>Item ' + i + '</b> <span>in stock</span></li>');
  document.querySelector('main').insertAdjacentHTML('beforeend', '<ul id="large">' + items.join('') + '</ul>');
  return document.getElementsByTagName('*').length;
}"""


# Every long task (>= 50 ms) of the page, from its first script on: [startTime, duration].
LONG_TASKS = """window.__longTasks = [];
new PerformanceObserver(l => { for (const e of l.getEntries()) window.__longTasks.push([e.startTime, e.duration]); })
  .observe({type: 'longtask'});"""
AFTER_SNAPSHOT = """async recorder => {
  const t0 = performance.now();
  setTimeout(() => recorder == 'tracker' ? window.__hindsightRecord.record.takeFullSnapshot() : rrwebRecord.takeFullSnapshot());
  await new Promise(done => setTimeout(done, 4000));   // the segment's JSON and gzip come in slices after it
  return window.__longTasks.filter(([t]) => t >= t0).map(([, d]) => Math.round(d));
}"""
ROUTES = ("#nav-settings", "#nav-profile", "#nav-home", "#nav-details", "#nav-settings", "#nav-home")


# Long animation frames (Chromium): each long frame's scripts, which script and entry point ran
# (start, duration, invoker type, invoker, script URL); with it each long task of the SPA is named.
LONG_FRAMES = """window.__longFrames = [];
new PerformanceObserver(l => { for (const e of l.getEntries()) for (const s of e.scripts)
  window.__longFrames.push([s.startTime, s.duration, s.invokerType, s.invoker, s.sourceURL]); })
  .observe({type: 'long-animation-frame', buffered: true});"""
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline"]
TRACKER_URLS = ("/tracker.js", "/tracker/capture.", "/tracker/record.")
PROFILE_INTERVAL_US = 500


@dataclass
class SpaRun:
    """One visit of the demo SPA (milliseconds)."""
    load: list[int]  # PerformanceObserver longtask durations, first 5 s of the page load
    routes: list[int]  # ... after the route changes
    # From the trace (main-thread tasks) and the CPU profile of the same visit, every task of
    # >= 50 ms wall or with >= 5 ms of the tracker's code: (wall, cpu, tracker cpu).
    tasks: list[tuple[int, int, int]]
    screenshots: int  # screenshots uploaded during the visit
    # Each long task (both windows) named by the longest script of the long animation frame
    # that holds it ("tracker.js: evaluation", "record chunk: setTimeout", "page: ..."; "?" none).
    named: list[str] = field(default_factory=list)

    def tracker_max(self) -> int:
        """The most CPU the tracker's code took in one task."""
        return max((t for _, _, t in self.tasks), default=0)

    def long_with_tracker(self) -> list[tuple[int, int, int]]:
        """Tasks >= 50 ms wall in which the tracker's code ran at least half the task's CPU."""
        return [t for t in self.tasks if t[0] >= 50 and t[2] * 2 >= t[1] > 0]


def script_name(url: str, invoker_type: str, invoker: str) -> str:
    """A long frame's script as the SPA section names it."""
    file = url.split("?")[0].rsplit("/", 1)[-1]
    who = ("tracker.js" if file == "tracker.js" else "record chunk" if file.startswith("record.")
           else "screenshot chunk" if file.startswith("capture.") else "page" if file else "?")
    how = "evaluation" if invoker_type in ("classic-script", "module-script") else (
        invoker.split(":")[-1] if invoker.startswith("TimerHandler") else invoker)
    return f"{who}: {how}"


def name_long_tasks(long_tasks: list[list[float]], frames: list[list]) -> list[str]:
    """Each long task [start, duration] named by the longest long-frame script inside it."""
    names = []
    for start, duration in long_tasks:
        inside = [f for f in frames if start - 1 <= f[0] <= start + duration]
        best = max(inside, key=lambda f: f[1], default=None)
        names.append(script_name(best[4] or "", best[2], best[3] or "") if best else "?")
    return names


def main_thread_tasks(trace: Path, origin: str = "") -> list[tuple[int, int, int]]:
    """[(start µs, wall µs, cpu µs)] of the page's renderer main thread: the one that parsed a
    document of `origin` (the browser's trace also holds other renderers, once in a while a
    busier one), else the busiest one."""
    data = json.loads(trace.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    mains = {(e["pid"], e["tid"]) for e in events
             if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"}
    parsed = {(e.get("pid"), e.get("tid")) for e in events if e.get("name") == "ParseHTML"
              and origin and str(e.get("args", {}).get("beginData", {}).get("url", "")).startswith(origin)}
    mains = (mains & parsed) or mains
    per: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for e in events:
        key = (e.get("pid"), e.get("tid"))
        if e.get("name") == "RunTask" and e.get("ph") == "X" and key in mains:
            per.setdefault(key, []).append((e["ts"], e.get("dur", 0), e.get("tdur", 0)))
    return max(per.values(), key=lambda tasks: sum(d for _, d, _ in tasks), default=[])


def tracker_time(profile: dict, tasks: list[tuple[int, int, int]]) -> list[int]:
    """For each task, the µs of its CPU time spent in the tracker's scripts (tracker.js or its
    chunks, what they call included): its CPU time times the share of the CPU profile's samples
    inside it whose stack holds a frame of them. (A sample's own interval is wall time: on a
    busy machine the thread waits between samples, so counts, not intervals, are shares.)"""
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {c: n["id"] for n in profile["nodes"] for c in n.get("children", [])}
    ours: dict[int, bool] = {}

    def is_ours(node_id: int) -> bool:
        if node_id not in ours:
            url = nodes[node_id]["callFrame"]["url"]
            ours[node_id] = any(u in url for u in TRACKER_URLS) or (
                node_id in parent and is_ours(parent[node_id]))
        return ours[node_id]

    starts = sorted(range(len(tasks)), key=lambda i: tasks[i][0])
    counted = [[0, 0] for _ in tasks]  # [samples, the tracker's samples]
    at = profile["startTime"]
    j = 0
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        at += delta
        while j < len(starts) and tasks[starts[j]][0] + tasks[starts[j]][1] <= at:
            j += 1
        if j < len(starts) and tasks[starts[j]][0] <= at:
            counted[starts[j]][0] += 1
            counted[starts[j]][1] += is_ours(node_id)
    return [round(cpu * mine / n) if n else 0 for (_, _, cpu), (n, mine) in zip(tasks, counted, strict=True)]


def measure_spa(browser, site: DemoSite, key: str, rec: Recording) -> None:
    """The demo SPA: long tasks in the first 5 s of a page load, then after six route changes
    (1.5 s apart, and 2 s after the last); the trace and CPU profile of the same visit."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(LONG_TASKS)
    context.add_init_script(LONG_FRAMES)
    page = context.new_page()
    shots: list[str] = []
    page.on("request", lambda r: shots.append(r.url)
            if r.method == "POST" and "/api/v1/track/screenshot" in r.url else None)
    cdp = context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": PROFILE_INTERVAL_US})
    cdp.send("Profiler.start")
    with tempfile.TemporaryDirectory(prefix="hindsight-spa-trace-") as tmp:
        trace = Path(tmp) / "trace.json"
        browser.start_tracing(page=page, path=str(trace), categories=TRACE_CATEGORIES)
        page.goto(site.url() + "/app")
        page.wait_for_timeout(5000)
        load = page.evaluate("window.__longTasks.filter(([t]) => t < 5000).map(([, d]) => Math.round(d))")
        t0 = page.evaluate("performance.now()")
        for route in ROUTES:
            page.click(route)
            page.wait_for_timeout(1500)
        page.wait_for_timeout(2000)
        routes = page.evaluate("t0 => window.__longTasks.filter(([t]) => t >= t0).map(([, d]) => Math.round(d))", t0)
        named = name_long_tasks(page.evaluate("t0 => window.__longTasks.filter(([t]) => t < 5000 || t >= t0)", t0),
                                page.evaluate("window.__longFrames"))
        browser.stop_tracing()
        profile = cdp.send("Profiler.stop")["profile"]
        tasks = main_thread_tasks(trace, site.url())
    spent = tracker_time(profile, tasks)
    kept = [(round(w / 1000), round(c / 1000), round(o / 1000))
            for (_, w, c), o in zip(tasks, spent, strict=True) if w >= 50_000 or o >= 5_000]
    rec.spa.setdefault(key, []).append(SpaRun(load, routes, kept, len(shots), named))
    context.close()


class StaticTracker:
    """An earlier build of tracker.js and its chunks (`git archive REV tracker`, built in a
    temporary directory with this checkout's node_modules), served on its own port; the demo
    site's snippet points at it, its API calls go to the real API (data-endpoint)."""

    def __init__(self, rev: str) -> None:
        self.rev = rev
        self.dir = Path(tempfile.mkdtemp(prefix="hindsight-tracker-before-"))
        archive = subprocess.run(["git", "archive", rev, "tracker"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(self.dir)], input=archive, check=True)
        (self.dir / "tracker" / "node_modules").symlink_to(ROOT / "tracker" / "node_modules")
        subprocess.run(["node", "build.mjs"], cwd=self.dir / "tracker", check=True, stdout=subprocess.DEVNULL)
        self.dist = self.dir / "tracker" / "dist"
        self.manifest = json.loads((self.dist / "manifest.json").read_text())
        dist = self.dist

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                name = self.path.split("?")[0].rsplit("/", 1)[-1]
                file = dist / name
                body = file.read_bytes() if name.endswith(".js") and file.is_file() else b""
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/javascript; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def snippet(self, api_url: str, account_id: str) -> str:
        return (f'<script src="{self.url}/tracker.js" data-account="{account_id}" '
                f'data-endpoint="{api_url.rstrip("/")}" async></script>')

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


def measure_spa_rounds(browser, api, url: str, sites: dict[str, DemoSite], rec: Recording,
                       rounds: int, before: StaticTracker | None) -> None:
    """The demo SPA with tracker.js's defaults (DOM recording and screenshots on), a new
    account each round: its first visit takes the screenshots the server wants (one per
    route), the second finds them there (those its first visit took). With `before`, the
    earlier build does the same on its own accounts, in alternating order."""
    from conftest import new_account

    builds = ["after", "before"] if before else ["after"]
    for r in range(rounds):
        measure_spa(browser, sites["none"], "none", rec)
        for build in builds if r % 2 == 0 else builds[::-1]:
            fresh = new_account(url, "localhost")
            spa = DemoSite(api.url, fresh["account_id"])
            if build == "before":
                spa.snippet = before.snippet(api.url, fresh["account_id"])
            spa.start()
            try:
                measure_spa(browser, spa, f"{build}: first visit", rec)
                measure_spa(browser, spa, f"{build}: second visit", rec)
            finally:
                spa.stop()


def measure_recording(browser, sites: dict[str, DemoSite], chunk: str, rec: Recording) -> None:
    """tracker.js's DOM recording on the demo page: the page load's time in the record chunk
    (CPU profile), then one full snapshot on the demo page and on a large one; plain rrweb
    for comparison."""
    for recorder, site in (("tracker", sites["recording"]), ("rrweb", sites["rrweb"])):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_init_script(LONG_TASKS)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        if recorder == "tracker":
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 50})
            cdp.send("Profiler.start")
        page.goto(site.url() + "/")
        if recorder == "tracker":
            page.wait_for_function("() => !!window.__hindsightRecord && !!__hindsightRecord.started")
            page.wait_for_timeout(800)
            rec.load_ms.append(recorder_time_ms(cdp.send("Profiler.stop")["profile"], chunk))
        else:
            page.wait_for_timeout(800)
        page.evaluate(SNAPSHOT, recorder)  # warm: functions compiled
        rec.add(f"{recorder} demo", page.evaluate(SNAPSHOT, recorder))
        rec.add("elements demo", page.evaluate("document.getElementsByTagName('*').length"))
        rec.add("elements large", page.evaluate(GROW, LARGE_ITEMS))
        page.wait_for_timeout(300)  # the mutations of growing it are recorded first
        rec.add(f"{recorder} large", page.evaluate(SNAPSHOT, recorder))
        page.wait_for_timeout(1000)  # that snapshot's segment is made and sent
        rec.large_tasks.setdefault(recorder, []).append(page.evaluate(AFTER_SNAPSHOT, recorder))
        context.close()


@dataclass
class Result:
    variants: dict[str, Variant]
    manifest: dict
    rounds: int
    chromium: str
    recording: Recording
    load: float  # the machine's 1-minute load average at the end of the run
    against: str | None = None  # the earlier build of the SPA comparison

    def visit_cost(self, name: str) -> tuple[float, float]:
        """(median main-thread ms in the recorder's code during the visit, per recorded event)."""
        v = self.variants[name]
        per = [t / max(1, n) for t, n in zip(v.visit_self_ms, v.visit_events, strict=True)]
        return statistics.median(v.visit_self_ms), statistics.median(per)

    def visit_extra(self, name: str) -> float:
        """Median TaskDuration of the visit minus the no-recorder visit (noisy: a cross-check)."""
        return statistics.median(v - b for v, b in zip(self.variants[name].visit_task_ms,
                                                        self.variants["none"].visit_task_ms, strict=True))

    def loop_cost(self, name: str) -> float:
        per = [(v - b) / max(1, n) for v, b, n in zip(
            self.variants[name].loop_ms, self.variants["none"].loop_ms,
            self.variants[name].loop_events, strict=True)]
        return statistics.median(per)


def run(rounds: int, spa_only: bool = False, against: str | None = "HEAD") -> Result:
    manifest = ensure_tracker_built()
    before = StaticTracker(against) if against else None
    cluster = bench_common.start_cluster(durable=False)
    try:
        from conftest import new_account
        from hindsight.migrate import migrate

        url = cluster.url()
        migrate(url)
        api = ApiServer(url).start()
        try:
            account = new_account(url, "localhost")
            sites = {
                "none": DemoSite(api.url, account["account_id"], recorder="none").start(),
                # The events alone: screenshots and the DOM recording are measured apart.
                "hindsight": DemoSite(api.url, account["account_id"],
                                      attrs={"data-screenshots": "off", "data-record": "off"}).start(),
                "rrweb": DemoSite(api.url, account["account_id"], recorder="rrweb").start(),
                "recording": DemoSite(api.url, account["account_id"],
                                      attrs={"data-screenshots": "off"}).start(),
            }
            variants = {name: Variant(name) for name in VARIANTS}
            recording = Recording()
            try:
                with chromium() as browser:
                    version = browser.version
                    if not spa_only:
                        for r in range(rounds):
                            order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
                            for name in order:
                                measure_visit(browser, sites[name], variants[name])
                        for name in VARIANTS:
                            measure_pictures(browser, sites[name], variants[name],
                                             manifest["capture_chunk"], max(2, rounds // 2))
                        for _ in range(max(2, rounds // 2)):
                            measure_recording(browser, sites, manifest["record_chunk"], recording)
                    measure_spa_rounds(browser, api, url, sites, recording,
                                       rounds if spa_only else max(2, rounds // 2), before)
            finally:
                for site in sites.values():
                    site.stop()
        finally:
            api.stop()
    finally:
        cluster.stop()
        if before:
            before.stop()
    return Result(variants, manifest, rounds, version, recording, os.getloadavg()[0], against)


def kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def render(result: Result, command: str) -> str:
    m = result.manifest
    core = m["files"]["tracker.js"]
    chunk = m["files"][m["capture_chunk"]]
    rr = m["bench"]["rrweb-record.js"]
    hs_visit, hs_event = result.visit_cost("hindsight")
    rr_visit, rr_event = result.visit_cost("rrweb")
    hs_loop, rr_loop = result.loop_cost("hindsight"), result.loop_cost("rrweb")
    hv, rv = result.variants["hindsight"], result.variants["rrweb"]
    cpu = platform.processor() or platform.machine()
    lines = [
        BEGIN,
        "## tracker.js: main-thread cost and size, next to rrweb",
        "",
        f"Command: `{command}` — {time.strftime('%Y-%m-%d')}, {cpu}, 2 cores, headless Chromium "
        f"{result.chromium} (Debian), {result.rounds} rounds per recorder in alternating order; medians.",
        "The same demo page (tracker/demo/index.html) is recorded by nothing, by tracker.js "
        "(screenshots and DOM recording off here: measured below and in the next section) and "
        "by rrweb's `record()` (npm `rrweb` 2.2.2, "
        "bundled by the same esbuild; its events shipped every 5 s). Costs are the main-thread "
        "time in the recorder's own code during the visit, from V8's sampling CPU profiler "
        "(50 µs; a sample counts when a frame of the recorder's script is on its stack, so "
        "what it calls counts too), and, for the dispatch loop, performance.now() minus the "
        "same loop with no recorder.",
        "",
        "| | tracker.js | rrweb record | target |",
        "|---|---|---|---|",
        f"| bundle, raw | {kb(core['bytes'])} | {kb(rr['bytes'])} | |",
        f"| bundle, gzip | **{core['gzip_bytes']:,} B** ({kb(core['gzip_bytes'])}) | {rr['gzip_bytes']:,} B "
        f"({kb(rr['gzip_bytes'])}) | < 6 KB, without the screenshot library |",
        f"| lazy screenshot chunk (html2canvas 1.4.1 + capture), gzip | {kb(chunk['gzip_bytes'])} "
        f"(raw {kb(chunk['bytes'])}), loaded on the first screenshot | — | |",
        f"| scripted visit (steady state): events recorded | {statistics.median(hv.visit_events):.0f} | "
        f"{statistics.median(rv.visit_events):.0f} | |",
        f"| scripted visit: main-thread time in the recorder's code (CPU profile) | {hs_visit:.1f} ms | "
        f"{rr_visit:.1f} ms | |",
        f"| scripted visit: per recorded event | **{hs_event:.4f} ms** | {rr_event:.4f} ms | "
        f"< {TARGET_EVENT_MS} ms (seed: 0.5 ms) |",
        f"| the same visit on a fresh page (functions compiled on first use) | "
        f"{statistics.median(hv.cold_self_ms):.1f} ms | {statistics.median(rv.cold_self_ms):.1f} ms | |",
        f"| dispatch loop ({LOOP:,} × click, key, keystroke, mouse move): per recorded event | **{hs_loop:.4f} ms** "
        f"({statistics.median(hv.loop_events):.0f} events) | {rr_loop:.4f} ms "
        f"({statistics.median(rv.loop_events):.0f} events) | < {TARGET_EVENT_MS} ms |",
        f"| one screenshot (html2canvas, masking, JPEG 0.6, ≤ 1024 px wide) | "
        f"{statistics.median(hv.picture_ms):.0f} ms | full snapshot: "
        f"{statistics.median(rv.picture_ms):.1f} ms | taken when the page is idle |",
        "",
        "Reading it: the dispatch loop (many events, steady state) is the recorder's own cost "
        "per event. The visit's per-event figure also carries what is paid per batch, not per "
        "event (each `fetch` hand-off is about 0.5 ms of main thread in Chromium, plus "
        "`localStorage`), spread over few events: tracker.js merges a burst of typing into one "
        "event and samples the mouse, so it records "
        f"{statistics.median(hv.visit_events) / max(1, statistics.median(rv.visit_events)):.0%} "
        "of rrweb's events for the same visit and spends "
        f"{'less' if hs_visit < rr_visit else 'more'} main-thread time on the whole visit "
        f"({hs_visit:.1f} ms against {rr_visit:.1f} ms). The screenshot is the expensive part: "
        "once per page view, from `requestIdleCallback`, and an identical one is not sent.",
        "Cross-check, whole-visit main-thread time (CDP `TaskDuration`) minus the no-recorder "
        f"visit: tracker.js {result.visit_extra('hindsight'):+.0f} ms, rrweb "
        f"{result.visit_extra('rrweb'):+.0f} ms (Playwright's input dispatch dominates it, so "
        "it is noisy). Rounds (recorder ms / events): "
        + "; ".join(f"{n}: " + ", ".join(f"{t:.1f}/{e}" for t, e in zip(
            result.variants[n].visit_self_ms, result.variants[n].visit_events, strict=True))
            for n in ("hindsight", "rrweb")) + ".",
        END,
    ]
    return "\n".join(lines) + "\n"


def render_recording(result: Result, command: str) -> str:
    """The section on DOM recording: sizes, and a full snapshot against a screenshot."""
    m, rec = result.manifest, result.recording
    core, record = m["files"]["tracker.js"], m["files"][m["record_chunk"]]
    capture, rr = m["files"][m["capture_chunk"]], m["bench"]["rrweb-record.js"]
    shot = statistics.median(result.variants["hindsight"].picture_ms)
    demo, large = rec.median("tracker demo"), rec.median("tracker large")
    plain_large = rec.median("rrweb large")
    versus = (f"plain rrweb in the same run: {plain_large:.0f} ms; tracker.js adds its masking "
              "callbacks to it, and makes the snapshot's JSON for its segment later, in slices")

    def tasks(runs: list[list[int]]) -> str:
        longest = statistics.median(max(r, default=0) for r in runs)
        others = max((d for r in runs for d in sorted(r)[:-1]), default=0)
        return (f"longest {longest:.0f} ms (median), {statistics.median(len(r) for r in runs):.0f} task(s) "
                f"≥ 50 ms a run; besides the snapshot's own, the longest: {others} ms")

    return "\n".join([
        "## tracker.js with DOM recording",
        "",
        f"Command: `{command}` (the same run as the section above) — {time.strftime('%Y-%m-%d')}, "
        f"headless Chromium {result.chromium}; medians of {len(rec.load_ms)} page loads per recorder; "
        f"load average {result.load:.1f} on 2 cores during the run (a shared machine: compare "
        "within a row, not across runs).",
        "tracker.js records the DOM with rrweb's recorder (npm `@rrweb/record` 2.1.6) from a lazy "
        "chunk, masked by the rules of `tracker/src/mask.js` (fields, and the text that may be "
        "masked, go through them), its events serialized into segments as they come, except a full "
        "snapshot's, whose JSON is made and gzipped in 8 ms slices after it. A full snapshot is "
        "timed in the page (`performance.now()` around `takeFullSnapshot()`, synchronous: "
        "rrweb's serializing and our masking callbacks); the long tasks of the 4 s from it "
        "(the next row) include the slices and the upload; the screenshot is the one of the "
        "section above (html2canvas, masking, JPEG).",
        "",
        "| | tracker.js | plain rrweb `record()` |",
        "|---|---|---|",
        f"| tracker.js (the core), gzip | **{core['gzip_bytes']:,} B** (raw {kb(core['bytes'])}); "
        f"budget 6 KB | |",
        f"| recording chunk `record.<hash>.js` (@rrweb/record + segments + masking), gzip | "
        f"**{kb(record['gzip_bytes'])}** (raw {kb(record['bytes'])}), loaded when tracker.js starts | "
        f"npm `rrweb` 2.2.2's whole bundle: {kb(rr['gzip_bytes'])} |",
        f"| screenshot chunk `capture.<hash>.js`, gzip | {kb(capture['gzip_bytes'])}, loaded when a "
        "screenshot is wanted | |",
        f"| page load: main-thread time in the recording chunk (start, first full snapshot, "
        f"segment) | {statistics.median(rec.load_ms):.1f} ms | |",
        f"| one full snapshot, demo page ({rec.median('elements demo'):.0f} elements) | **{demo:.1f} ms** | "
        f"{rec.median('rrweb demo'):.1f} ms |",
        f"| one full snapshot, demo page + {LARGE_ITEMS:,} list items ({rec.median('elements large'):.0f} "
        "elements) | "
        f"**{large:.1f} ms** | {rec.median('rrweb large'):.1f} ms |",
        f"| one screenshot of the demo page (for comparison) | {shot:.0f} ms | |",
        f"| long tasks in the 4 s from one full snapshot of the large page (CDP-free: "
        f"PerformanceObserver `longtask`) | {tasks(rec.large_tasks['tracker'])} | "
        f"{tasks(rec.large_tasks['rrweb'])} |",
        "",
        f"Reading it: on the demo page a full snapshot costs {demo:.1f} ms of main thread against "
        f"{shot:.0f} ms for a screenshot ({shot / max(demo, 0.01):.0f}× less), and it is the replay "
        "itself rather than a picture of one moment. With recording on, a session takes one "
        "screenshot per distinct page and viewport width (heatmap backgrounds, thumbnails) "
        "instead of one per page view. rrweb's snapshot is one synchronous task: on the large "
        f"page it takes {large:.0f} ms, the price of serializing a DOM that size ({versus}). "
        "Issue 11's target, no task over 50 ms on the large page, is missed: rrweb's snapshot "
        "cannot be sliced without forking it (docs/DECISIONS.md \"The large page's full "
        "snapshot\"). It happens on each page load and every 5 minutes; a page that size should "
        "be recorded with `data-record=\"off\"` or have its bulk blocked (`data-hindsight-block`). "
        "The demo single-page app's long tasks: the next section.",
    ]) + "\n"


def render_spa(result: Result, command: str) -> str:
    """The section on the demo SPA's long tasks, this build against the earlier one."""
    spa, m = result.recording.spa, result.manifest
    keys = ["none"] + [f"{b}: {v}" for b in ("before", "after") for v in ("first visit", "second visit")
                       if f"{b}: {v}" in spa]

    def count(lists: list[list[int]]) -> str:
        return (f"{statistics.median(len(x) for x in lists):g} / {statistics.median(sum(x) for x in lists):g} ms "
                f"/ {max((max(x) for x in lists if x), default=0)} ms")

    def row(key: str) -> str:
        runs = spa[key]
        ours = [r.long_with_tracker() for r in runs]
        cpu_long = [[c for _, c, _ in r.tasks if c >= 50] for r in runs]
        return (f"| {key} | {count([r.load for r in runs])} | {count([r.routes for r in runs])} | "
                f"{statistics.median(len(x) for x in ours):g} ({', '.join(str(len(x)) for x in ours)}) | "
                f"{max(len(x) for x in cpu_long)} | "
                f"**{max(r.tracker_max() for r in runs)} ms** ({', '.join(str(r.tracker_max()) for r in runs)}) | "
                f"{' + '.join(str(r.screenshots) for r in runs)} |")

    def detail(key: str) -> str:
        return f"{key}: " + "; ".join(
            "[" + ", ".join(f"{w}/{c}/{o}" for w, c, o in r.tasks) + "]" for r in spa[key])

    capture = m["files"][m["capture_chunk"]]
    record = m["files"][m["record_chunk"]]
    return "\n".join([
        "## tracker.js on the demo single-page app: long tasks",
        "",
        f"Command: `{command}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, headless Chromium "
        f"{result.chromium}; {len(spa['none'])} rounds, the builds in alternating order; load average "
        f"{result.load:.1f} on 2 cores at the end of the run (a shared machine: wall-clock times "
        "stretch with the load, CPU times much less)."
        + (" Written alone (`--spa-only`): the two sections above are from the last full run (an "
           "SPA table there is older than this one)." if "--spa-only" in command else ""),
        f"The demo SPA (tracker/demo/app.html, {len(ROUTES)} route changes 1.5 s apart, then 2 s idle) with "
        "tracker.js's defaults (DOM recording and screenshots on), a new account per round and build: its "
        "first visit takes the screenshots the server wants (one per route the visit stays on long enough: "
        "heatmap backgrounds), the second takes those the first did not. *before*: tracker.js built from "
        f"`{result.against}`{revision(result.against)} (`git archive`, served apart, the same API); "
        "*after*: this checkout "
        f"(screenshot chunk {kb(capture['gzip_bytes'])} gzip, recording chunk {kb(record['gzip_bytes'])}). "
        "Long tasks: PerformanceObserver `longtask` (≥ 50 ms wall, registered before any script), "
        "count / total / worst (medians of count and total, worst of all runs). From a Chromium trace "
        "(`RunTask` on the page's main thread: wall and CPU time) and V8's CPU profile (500 µs) of the "
        "same visit: the tracker's CPU time in a task is the task's CPU time times the share of its "
        "profile samples with a frame of the tracker's scripts (tracker.js, its chunks) on the stack; a "
        "task is *the tracker's* when that is at least half of it; *tracker CPU in one task* is the most "
        "the tracker's code took within one task, the part that depends least on the machine's load.",
        "",
        "| page | first 5 s of the load | after the route changes | long tasks that are the tracker's "
        "(per run) | tasks ≥ 50 ms of CPU (worst run) | tracker CPU in one task, worst (per run) | "
        "screenshots (per run) |",
        "|---|---|---|---|---|---|---|",
        *[row(k) for k in keys],
        "",
        *reading(spa),
        "",
        "Every long task (both windows) named by the longest script of the long animation frame that "
        "holds it (Chromium's Long Animation Frames: script and entry point; *page* is the demo app's "
        "own script), all visits of each build: " + "; ".join(
            f"{k}: " + (", ".join(f"{name} ×{n}" for name, n in sorted(
                collections.Counter(x for r in spa[k] for x in r.named).items(), key=lambda kv: -kv[1]))
                or "none") for k in keys) + ".",
        "",
        "Tasks per run, wall/CPU/tracker-CPU ms (every task ≥ 50 ms wall or with ≥ 5 ms of the "
        "tracker's code): " + " | ".join(detail(k) for k in keys if k != "none") + ".",
    ]) + "\n"


def revision(rev: str | None) -> str:
    """ (its commit) for a revision that is not one already, e.g. HEAD."""
    if not rev:
        return ""
    found = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True)
    commit = found.stdout.strip()
    return f" ({commit})" if commit and not commit.startswith(rev) else ""


def reading(spa: dict[str, list[SpaRun]]) -> list[str]:
    """The section's reading, from its numbers: each build's visits together."""
    def total(build: str) -> tuple[int, int, int, int, int]:
        runs = [r for k, rs in spa.items() if k.startswith(build + ":") for r in rs]
        return (sum(len(r.long_with_tracker()) for r in runs), len(runs),
                max((r.tracker_max() for r in runs), default=0),
                sum(len(r.load) + len(r.routes) for r in runs), sum(r.screenshots for r in runs))

    if not any(k.startswith("before:") for k in spa):
        return []
    (b_ours, b_n, b_max, b_long, b_shots), (a_ours, a_n, a_max, a_long, a_shots) = total("before"), total("after")
    none_long = sum(len(r.load) + len(r.routes) for r in spa["none"])
    left = [c for k, rs in spa.items() if k.startswith("after:") for r in rs for _, c, _ in r.long_with_tracker()]
    span = f"{min(left)}-{max(left)} ms" if left else "no"
    return [
        f"Reading it: in one task the tracker's code took at most **{a_max} ms** of CPU after, against "
        f"{b_max} ms before. Long tasks (wall) that were the tracker's: **{a_ours} in {a_n} visits after**, "
        f"{b_ours} in {b_n} before; all long tasks the page saw: {a_long} against {b_long} (without the "
        f"tracker: {none_long} in {len(spa['none'])} loads). "
        + (f"What is left after are tasks of {span} of CPU that the machine's load stretched past 50 ms of "
           "wall time (the per-run lists below: wall/CPU; what they are: the names above). " if left else
           "No long task of the tracker is left after. ")
        + "Screenshots: "
        f"{a_shots} after, {b_shots} before (a screenshot whose route is left before it is done is "
        "dropped; that route is taken on a later visit).",
    ]


def write_section(doc: Path, section: str) -> None:
    """Replace this benchmark's section of the doc (or add it), leaving the others alone."""
    write_doc_section(doc, "bench/tracker.py", section.replace(BEGIN, "").replace(END, ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round; does not write the doc")
    parser.add_argument("--rounds", type=int, default=None, help="visits per recorder (default 5)")
    parser.add_argument("--output", type=Path, default=None, help="where to write (default docs/BENCHMARKS.md)")
    parser.add_argument("--spa-only", action="store_true",
                        help="only the demo SPA's long tasks (step 7); writes its own section")
    parser.add_argument("--against", default="HEAD",
                        help="the earlier tracker.js build the SPA is compared with (a git revision; "
                             "'' for none)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    if not Path("/usr/bin/chromium").exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "bootstrap.sh")], check=True)
    result = run(rounds, spa_only=args.spa_only, against=args.against or None)
    command = "python bench/tracker.py" + (" --spa-only" if args.spa_only else "") + (
        f" --rounds {args.rounds}" if args.rounds else "") + (
        f" --against {args.against}" if args.against != "HEAD" else "")
    spa = render_spa(result, command)
    sections = [] if args.spa_only else [
        ("bench/tracker.py", render(result, command)), (RECORDING_SECTION, render_recording(result, command))]
    sections.append((SPA_SECTION, spa))
    for _, text in sections:
        print(text)
    output = args.output or (None if args.quick else DOC)
    if output:
        for name, text in sections:
            if name == "bench/tracker.py":
                write_section(output, text)
            else:
                write_doc_section(output, name, text)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
