"""DeviceRegistrar: devices registered one by one in order, each meter released after its own."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from tb_dlms.connector.registration import DeviceRegistrar


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.answers: dict[str, list[Any]] = {}

    def register(self, name: str) -> Any:
        self.events.append(("register", name))
        answers = self.answers.get(name)
        answer = answers.pop(0) if answers else True
        if isinstance(answer, Exception):
            raise answer
        return answer

    def registrar(self, names: list[str], **kw: Any) -> DeviceRegistrar:
        return DeviceRegistrar(
            names, self.register, lambda n: self.events.append(("release", n)),
            lambda n: self.events.append(("registered", n)),
            logging.getLogger("test.registration"), "DLMS", **kw)


def test_each_meter_is_released_right_after_its_device_is_registered_in_order() -> None:
    r = Recorder()
    reg = r.registrar(["b", "a", "c"])
    reg.start()
    wait_for(lambda: reg.pending == 0)
    reg.stop()
    assert r.events == [(e, n) for n in ("b", "a", "c") for e in ("register", "registered",
                                                                    "release")]
    assert reg.registered == 3


def test_thingsboard_away_releases_everyone_and_retries_registration(caplog) -> None:
    r = Recorder()
    r.answers = {"a": [False, False, True]}
    reg = r.registrar(["a", "b"], retry_s=0.02, connect_grace_s=0.0)
    with caplog.at_level(logging.WARNING, "test.registration"):
        reg.start()
        wait_for(lambda: reg.pending == 0)
        reg.stop()
    first = r.events.index(("registered", "a"))
    assert {("release", "a"), ("release", "b")} <= set(r.events[:first])  # polled anyway
    assert [e for e in r.events if e[0] == "registered"] == [("registered", "a"),
                                                              ("registered", "b")]
    warnings = [m for m in caplog.messages if "not connected" in m]
    assert warnings == ["DLMS: ThingsBoard is not connected after 0 s: polling all 2 meters "
                        "not registered yet"]  # once, not at every retry


def test_a_gateway_error_is_retried_and_releases_nobody_unregistered(caplog) -> None:
    r = Recorder()
    r.answers = {"a": [RuntimeError("dictionary changed size during iteration")]}
    reg = r.registrar(["a", "b"], retry_s=0.02, connect_grace_s=0.0)
    with caplog.at_level(logging.ERROR, "test.registration"):
        reg.start()
        wait_for(lambda: reg.pending == 0)
        reg.stop()
    # Each meter is released only after its own registration: a gateway error is not
    # "ThingsBoard away" (releasing everyone made the gateway register them on its data path).
    for name in ("a", "b"):
        assert r.events.index(("registered", name)) < r.events.index(("release", name))
    assert r.events.count(("register", "a")) == 2
    assert any("registering device a failed; retrying it" in m for m in caplog.messages)
    assert not any("not connected" in m for m in caplog.messages)


def test_stop_ends_a_registration_waiting_for_thingsboard() -> None:
    r = Recorder()
    r.answers = {"a": [False] * 1000}
    reg = r.registrar(["a"], retry_s=30.0, connect_grace_s=0.0)
    reg.start()
    wait_for(lambda: ("release", "a") in r.events)
    t0 = time.monotonic()
    reg.stop(timeout=2.0)
    assert time.monotonic() - t0 < 1.0
    assert reg.pending == 1


def test_progress_is_logged_while_a_long_registration_runs(caplog) -> None:
    gate = threading.Event()
    r = Recorder()
    names = [f"m{i}" for i in range(5)]

    def slow(name: str) -> Any:
        if name == "m3":
            gate.wait(2.0)
        return r.register(name)

    reg = DeviceRegistrar(names, slow, lambda n: None, lambda n: None,
                          logging.getLogger("test.registration"), "DLMS", progress_every_s=0.0)
    with caplog.at_level(logging.INFO, "test.registration"):
        reg.start()
        wait_for(lambda: reg.registered == 3)
        assert reg.pending == 2
        gate.set()
        wait_for(lambda: reg.pending == 0)
        reg.stop()
    assert "DLMS: 1 of 5 devices registered with the gateway" in caplog.text
    assert "DLMS: 5 devices registered in" in caplog.text


def test_a_gateway_still_connecting_at_start_is_waited_for_not_flooded() -> None:
    # The gateway opens connectors before its MQTT client connects: "not connected" for the
    # first seconds is the normal start, not a reason to poll 10,000 unknown devices at once.
    r = Recorder()
    r.answers = {"a": [False] * 5}
    reg = r.registrar(["a", "b"], retry_s=30.0, connect_grace_s=10.0)
    reg.start()
    wait_for(lambda: reg.pending == 0)
    reg.stop()
    assert ("release_all", "") not in r.events
    assert [e for e in r.events if e[0] == "release"] == [("release", "a"), ("release", "b")]


def test_several_workers_register_at_once_and_each_meter_exactly_once() -> None:
    # Each registration waits for ThingsBoard's acknowledgement: four in flight at once.
    lock = threading.Lock()
    busy, most = [0], [0]
    both_in = threading.Barrier(4, timeout=5.0)
    seen: list[str] = []

    def register(name: str) -> bool:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
            seen.append(name)
        if name in ("m0", "m1", "m2", "m3"):
            both_in.wait()  # the first four are in flight together, or this times out
        with lock:
            busy[0] -= 1
        return True

    released: list[str] = []
    registered: list[str] = []
    reg = DeviceRegistrar([f"m{i}" for i in range(40)], register, released.append,
                          registered.append,
                          logging.getLogger("test.registration"), "DLMS", workers=4)
    reg.start()
    wait_for(lambda: reg.pending == 0)
    reg.stop()
    assert most[0] == 4
    assert sorted(seen) == sorted(released) == sorted(registered) == sorted(
        f"m{i}" for i in range(40))
    assert reg.registered == 40


def test_meters_start_at_the_configured_rate_when_every_device_is_known() -> None:
    # A restart: every add_device returns at once. 10,000 meters released together would all
    # associate within one poll period; at start_rate they come in a steady stream instead.
    stamps: list[float] = []
    reg = DeviceRegistrar([f"m{i}" for i in range(6)], lambda n: True,
                          lambda n: stamps.append(time.monotonic()), lambda n: None,
                          logging.getLogger("test.registration"), "DLMS", workers=4,
                          start_rate=50.0)
    started = time.monotonic()
    reg.start()
    wait_for(lambda: reg.pending == 0)
    reg.stop()
    assert len(stamps) == 6
    assert max(stamps) - started >= 5 / 50  # the sixth not before five gaps of 1/50 s


def test_meters_released_while_thingsboard_is_away_still_come_at_the_start_rate() -> None:
    # The flood startupRate prevents must not come back through the "poll anyway" path, and
    # the housekeeping's repeated calls must not start a second drain.
    stamps: list[tuple[str, float]] = []
    reg = DeviceRegistrar([f"m{i}" for i in range(6)], lambda n: False,
                          lambda n: stamps.append((n, time.monotonic())), lambda n: None,
                          logging.getLogger("test.registration"), "DLMS", retry_s=30.0,
                          connect_grace_s=0.0, start_rate=50.0)
    started = time.monotonic()
    reg.start()
    wait_for(lambda: len(stamps) == 6)
    reg.release_all("again")
    reg.release_all("and again")
    time.sleep(0.2)
    reg.stop()
    assert [n for n, _ in stamps] == [f"m{i}" for i in range(6)]  # once each, in order
    assert stamps[-1][1] - started >= 5 / 50


def test_a_meter_that_fails_to_start_does_not_stop_the_others(caplog) -> None:
    def release(name: str) -> None:
        if name == "b":
            raise RuntimeError("can't start new thread")
        released.append(name)

    released: list[str] = []
    reg = DeviceRegistrar(["a", "b", "c"], lambda n: True, release, lambda n: None,
                          logging.getLogger("test.registration"), "DLMS", workers=2)
    with caplog.at_level(logging.ERROR, "test.registration"):
        reg.start()
        wait_for(lambda: reg.pending == 0)
        reg.stop()
    assert sorted(released) == ["a", "c"] and reg.registered == 3
    assert "DLMS: starting meter b failed" in caplog.text


def test_a_device_the_gateway_always_fails_on_holds_nobody_and_is_tried_a_few_times(
        caplog) -> None:
    r = Recorder()
    r.answers = {"bad": [RuntimeError("disk full")] * 100}
    reg = r.registrar(["bad", "m1", "m2"], retry_s=0.02, connect_grace_s=0.0)
    with caplog.at_level(logging.WARNING, "test.registration"):
        reg.start()
        wait_for(lambda: reg.pending == 0)
        reg.stop()
    first_bad_release = r.events.index(("release", "bad"))
    assert r.events.index(("release", "m1")) < first_bad_release  # not held behind it
    assert r.events.index(("release", "m2")) < first_bad_release
    assert r.events.count(("register", "bad")) == 5  # then its meter starts anyway
    tracebacks = [rec for rec in caplog.records if rec.exc_info]
    assert len(tracebacks) == 1  # one traceback, not one per attempt
    assert any("could not be registered in 5 attempts" in m for m in caplog.messages)
