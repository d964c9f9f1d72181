"""ProfileScheduler with a real session to the simulator (an engine stand-in that runs each job
on a thread): chunks handed over in order and once, positions saved after, a cleared profile
logged once and not re-read, and a gateway that refuses rows gets them again later."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from tb_dlms.connector.config import load_config
from tb_dlms.connector.profile_positions import PositionStore
from tb_dlms.connector.profile_scheduler import ProfileScheduler
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

LOAD = "1-0:99.1.0.255"


class Engine:
    """``submit(name, fn)``: fn(session) on a thread, one at a time, like the engine's RPCs."""

    def __init__(self, port: int) -> None:
        self.session = BlockingSession(TcpTransport("127.0.0.1", port, 2.0),
                                       SessionSettings(client=16))
        self.session.connect()
        self.lock = threading.Lock()

    def submit(self, name: str, fn: Any, timeout_s: float = 30.0) -> Future[Any]:
        future: Future[Any] = Future()

        def run() -> None:
            with self.lock:
                try:
                    future.set_result(fn(self.session))
                except Exception as exc:  # noqa: BLE001 - handed to the scheduler
                    future.set_exception(exc)

        threading.Thread(target=run, daemon=True).start()
        return future


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(1, 0).run_in_thread()
    yield server
    server.stop()


def meters(port: int, **profile: Any) -> list[Any]:
    cfg = load_config({"meters": [{
        "deviceName": "M1", "connection": {"type": "tcp", "host": "127.0.0.1", "port": port},
        "profiles": [{"obis": LOAD, "backfillDays": 0.5, "maxRowsPerRead": 8, **profile}]}]})
    assert not cfg.errors, cfg.errors
    # Tests poll faster than dlms.json allows (10 s minimum).
    import dataclasses
    m = cfg.meters[0]
    fast = dataclasses.replace(m.profiles[0], poll_period_s=0.05)
    return [dataclasses.replace(m, profiles=(fast,))]


def wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_chunks_in_order_once_then_a_cleared_profile_is_logged_once(
        sim: SimulatorServer, tmp_path: Path, caplog: Any) -> None:
    delivered: list[int] = []

    def deliver(meter: Any, profile: Any, rows: list[tuple[int, Any]]) -> bool:
        delivered.extend(ts for ts, _ in rows)
        return True

    positions = PositionStore(tmp_path)
    engine = Engine(sim.ports[0])
    scheduler = ProfileScheduler(engine, meters(sim.ports[0]), positions, deliver,
                                 lambda name: True, rows_per_second=10_000)
    caplog.set_level(logging.INFO)
    scheduler.start()
    try:
        wait(lambda: len(delivered) >= 48)  # half a day of quarter-hours
        assert delivered == sorted(set(delivered))
        assert positions.get("M1", LOAD) == delivered[-1]
        sim.model(0).clear_profile(LOAD)
        wait(lambda: "cleared or its clock set back" in caplog.text)
        reads = scheduler.reads
        wait(lambda: scheduler.reads > reads + 5)
    finally:
        scheduler.stop()
        engine.session.close()
    assert caplog.text.count("cleared or its clock set back") == 1
    assert delivered == sorted(set(delivered)), "a row came twice after the clear"


def test_rows_the_gateway_refuses_are_held_and_offered_again_and_the_position_waits(
        sim: SimulatorServer, tmp_path: Path) -> None:
    accepted: list[int] = []
    offers: list[int] = []
    refuse = threading.Event()
    refuse.set()

    def deliver(meter: Any, profile: Any, rows: list[tuple[int, Any]]) -> bool:
        offers.append(rows[0][0])
        if refuse.is_set():
            return False
        accepted.extend(ts for ts, _ in rows)
        return True

    positions = PositionStore(tmp_path)
    engine = Engine(sim.ports[0])
    scheduler = ProfileScheduler(engine, meters(sim.ports[0]), positions, deliver,
                                 lambda name: True, rows_per_second=10_000)
    scheduler.start()
    try:
        wait(lambda: len(offers) >= 3)  # offered again every 2 s
        assert positions.get("M1", LOAD) is None  # nothing taken, nothing saved
        assert scheduler.reads == 1 and len(set(offers)) == 1  # held, not read again
        refuse.clear()
        wait(lambda: len(accepted) >= 48, timeout=90)
    finally:
        scheduler.stop()
        engine.session.close()
    start = dt.datetime.now(dt.timezone.utc).timestamp() * 1000 - 0.5 * 86_400_000
    assert accepted == sorted(set(accepted)) and accepted[0] - start < 900_000
