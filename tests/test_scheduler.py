"""The scheduler thread: intervals, failure isolation, stop."""

import threading
import time

from hindsight.scheduler import Scheduler


def test_tasks_run_repeatedly_and_a_failure_does_not_stop_others():
    scheduler = Scheduler()
    ran = []
    done = threading.Event()

    def good():
        ran.append("good")
        if ran.count("good") >= 3:
            done.set()
        return len(ran)

    def bad():
        raise RuntimeError("boom")

    scheduler.every("bad", 0.01, bad, first_delay=0)
    scheduler.every("good", 0.02, good, first_delay=0)
    scheduler.start()
    try:
        assert done.wait(5)
    finally:
        scheduler.stop()
    status = {s["name"]: s for s in scheduler.status()}
    assert status["bad"]["failures"] >= 1 and status["bad"]["last_error"] == "RuntimeError: boom"
    assert status["good"]["runs"] >= 3 and status["good"]["last_error"] is None
    assert status["good"]["last_result"] >= 3


def test_stop_returns_promptly_while_idle():
    scheduler = Scheduler()
    scheduler.every("rare", 3600, lambda: None)
    scheduler.start()
    started = time.monotonic()
    scheduler.stop()
    assert time.monotonic() - started < 2


def test_run_now_updates_status():
    scheduler = Scheduler()
    scheduler.every("job", 3600, lambda: "done")
    assert scheduler.run_now("job") == "done"
    assert scheduler.status()[0]["runs"] == 1
