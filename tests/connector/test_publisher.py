"""Publisher: the engine's events reach the gateway in order, from one thread, never lost silently."""

from __future__ import annotations

import logging
import threading

from tb_dlms.connector.publisher import Publisher


def test_jobs_run_in_order_on_the_publisher_thread():
    pub = Publisher("t", logging.getLogger("t"))
    pub.start()
    seen, threads = [], set()

    def job(i):
        seen.append(i)
        threads.add(threading.current_thread().name)

    for i in range(1000):
        pub.put(job, i)
    assert pub.flush(5.0)
    assert seen == list(range(1000))
    assert threads == {"t publisher"}
    pub.stop()


def test_a_failing_job_is_logged_and_the_next_ones_run(caplog):
    pub = Publisher("t", logging.getLogger("t"))
    pub.start()
    seen = []

    def boom():
        raise RuntimeError("bug")

    with caplog.at_level(logging.ERROR):
        pub.put(boom)
        pub.put(seen.append, 1)
        assert pub.flush(5.0)
    assert seen == [1] and "t: publishing failed" in caplog.text
    pub.stop()


def test_a_stalled_gateway_drops_the_oldest_and_says_so(caplog):
    pub = Publisher("t", logging.getLogger("t"), limit=10)
    gate, seen = threading.Event(), []
    pub.start()
    pub.put(gate.wait, 5.0)  # the gateway stalls inside this job
    assert not pub.flush(0.05)
    with caplog.at_level(logging.ERROR):
        for i in range(25):
            pub.put(seen.append, i)
    gate.set()
    assert pub.flush(5.0)
    assert pub.dropped == 15 and seen == list(range(15, 25))
    assert "15 queued messages dropped" in caplog.text or "dropped so far" in caplog.text
    pub.stop()


def test_stop_runs_what_is_queued_then_ends_the_thread():
    pub = Publisher("t", logging.getLogger("t"))
    pub.start()
    seen = []
    for i in range(100):
        pub.put(seen.append, i)
    pub.stop()
    assert seen == list(range(100))
    assert not pub._thread.is_alive()
