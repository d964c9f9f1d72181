"""ProfileReader against the simulator's profiles and quirks over TCP: the rows the meter holds
(MeterModel.expected_profile_rows), at the right UTC instant, once."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tb_dlms.connector.profile_config import ProfileConfig
from tb_dlms.connector.profile_reader import ProfileReader
from tb_dlms.protocol.obis import Obis
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.model import MeterOptions
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

UTC = dt.timezone.utc
LOAD, BILLING, EVENTS = "1-0:99.1.0.255", "1-0:98.1.0.255", "0-0:99.98.0.255"


@pytest.fixture
def meter() -> Iterator[Any]:
    servers: list[SimulatorServer] = []

    def start(**options: Any) -> tuple[SimulatorServer, BlockingSession]:
        srv = SimulatorServer(1, 0, options=MeterOptions(**options)).run_in_thread()
        servers.append(srv)
        s = BlockingSession(TcpTransport("127.0.0.1", srv.ports[0], 2.0),
                            SessionSettings(client=16))
        s.connect()
        return srv, s

    yield start
    for srv in servers:
        srv.stop()


def reader(obis: str, days: float = 1, rows: int = 48, zone: Any = None) -> ProfileReader:
    return ProfileReader("M", ProfileConfig(Obis.parse(obis), backfill_days=days,
                                            max_rows_per_read=rows), zone)


def read_all(r: ProfileReader, session: Any, now_ms: int) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    since = None
    for _ in range(200):
        chunk = r.read_chunk(session, since, now_ms)
        out += chunk.rows
        if chunk.complete:
            return out
        since = max(chunk.read_to_ms, out[-1][0] if out else 0)
    raise AssertionError("never complete")


def expected(srv: SimulatorServer, obis: str, start_ms: int, now_ms: int) -> list[Any]:
    rows = srv.model(0).expected_profile_rows(
        obis, dt.datetime.fromtimestamp(start_ms / 1000, UTC),
        dt.datetime.fromtimestamp(now_ms / 1000, UTC))
    return [(int(r.time.timestamp() * 1000), r.values) for r in rows]


def now_ms() -> int:
    return int(dt.datetime.now(UTC).timestamp() * 1000)


@pytest.mark.parametrize("range_access", [True, False])
def test_billing_rows_scaled_at_midnight_by_range_or_entry(meter: Any, range_access: bool) -> None:
    srv, s = meter(profile_range_access=range_access)
    r, now = reader(BILLING, days=10, rows=4), now_ms()
    got = read_all(r, s, now)
    want = expected(srv, BILLING, now - 10 * 86_400_000, now)
    assert [ts for ts, _ in got] == [ts for ts, _ in want] and len(got) >= 9
    assert [tuple(v.values()) for _, v in got] == [tuple(w) for _, w in want]
    assert r.range_ok is range_access  # the refusal is remembered for the meter


def test_event_log_rows_carry_code_and_name(meter: Any) -> None:
    srv, s = meter()
    r, now = reader(EVENTS, days=3), now_ms()
    got = read_all(r, s, now)
    assert got and all({"event_code", "event_name"} <= set(v) for _, v in got)
    assert {v["event_name"] for _, v in got} >= {"Power down", "Power up"}
    assert [ts for ts, _ in got] == [ts for ts, _ in expected(srv, EVENTS, now - 3 * 86_400_000,
                                                              now)]


def test_rows_the_meter_flags_carry_their_clock_status(meter: Any) -> None:
    _, s = meter(clock_status_every=4)
    got = read_all(reader(LOAD, days=0.25), s, now_ms())
    flagged = [v["clock_status"] for _, v in got if "clock_status" in v]
    assert flagged and set(flagged) <= {1, 2} and len(flagged) < len(got)


@pytest.mark.parametrize("unspecified", [False, True])
def test_local_time_meter_rows_land_once_at_the_right_instant(meter: Any,
                                                              unspecified: bool) -> None:
    """A Madrid meter, with and without a UTC deviation in its stamps: the client needs its
    timeZone only in the second case; either way every instant comes once, in order."""
    srv, s = meter(time_zone="Europe/Madrid", deviation_unspecified=unspecified)
    r, now = reader(LOAD, days=2, zone=ZoneInfo("Europe/Madrid")), now_ms()
    got = read_all(r, s, now)
    times = [ts for ts, _ in got]
    assert times == sorted(set(times)) and all(b - a == 900_000 for a, b in zip(times, times[1:]))
    want = srv.model(0).expected_profile_rows(LOAD)
    instants = {int(w.time.replace(tzinfo=w.time.tzinfo or ZoneInfo("Europe/Madrid"))
                    .timestamp() * 1000) for w in want}
    assert set(times) <= instants


def test_a_cleared_profile_is_noticed_by_the_newest_row_check(meter: Any) -> None:
    srv, s = meter()
    r = reader(LOAD, days=0.5)
    got = read_all(r, s, now_ms())
    srv.model(0).clear_profile(LOAD)
    assert r.newest_row_ms(s) is None or r.newest_row_ms(s) < got[-1][0]
    logging.getLogger(__name__).debug("cleared: %d rows before", len(got))


@pytest.mark.parametrize("unspecified", [False, True])
def test_the_repeated_october_hour_of_a_madrid_meter(unspecified: bool) -> None:
    """25 October 2026, 02:00-03:00 local happens twice: eight quarter-hours, eight instants."""
    after = dt.datetime(2026, 10, 25, 4, 0, tzinfo=UTC)
    srv = SimulatorServer(1, 0, options=MeterOptions(
        time_zone="Europe/Madrid", deviation_unspecified=unspecified),
        clock=lambda: after.timestamp()).run_in_thread()
    try:
        with BlockingSession(TcpTransport("127.0.0.1", srv.ports[0], 2.0),
                             SessionSettings(client=16)) as s:
            s.connect()
            r = reader(LOAD, days=0.25, zone=ZoneInfo("Europe/Madrid"))
            got = read_all(r, s, int(after.timestamp() * 1000))
    finally:
        srv.stop()
    times = [ts for ts, _ in got]
    window = [t for t in times if dt.datetime(2026, 10, 25, 0, 0, tzinfo=UTC).timestamp() * 1000
              <= t < dt.datetime(2026, 10, 25, 2, 0, tzinfo=UTC).timestamp() * 1000]
    assert len(window) == 8  # 00:00-01:45 UTC: local 02:00-02:45 CEST, then CET
    assert times == sorted(set(times)) and all(b - a == 900_000 for a, b in zip(times, times[1:]))


class LyingSession:
    """A meter that claims 2^32 - 1 entries and answers every entry read with no rows."""

    def __init__(self, real: Any) -> None:
        self.real, self.entry_reads = real, 0

    def read(self, refs: Any) -> Any:
        refs = list(refs)
        if len(refs) == 1 and refs[0][2] == 7:
            return [type("R", (), {"raw": 0xFFFFFFFF})()]
        if len(refs) == 1 and len(refs[0]) == 4 and refs[0][3].selector == 2:
            self.entry_reads += 1
            return [type("R", (), {"raw": []})()]
        return self.real.read(refs)


def test_a_meter_lying_about_its_entries_does_not_hold_the_read(meter: Any) -> None:
    _, s = meter(profile_range_access=False)
    lying = LyingSession(s)
    r = reader(LOAD, days=1)
    r.range_ok = False
    chunk = r.read_chunk(lying, None, now_ms())
    assert chunk.rows == [] and chunk.complete and lying.entry_reads == 1
