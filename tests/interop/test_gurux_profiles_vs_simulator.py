"""Gurux's client reads our simulator's three profiles by range and by entry.

GXDLMSClient builds the selective-access requests (readRowsByRange: range_descriptor on the
clock column; readRowsByEntry) and parses the block-transferred answers itself; rows must equal
``MeterModel.expected_profile_rows`` of the same meter at the same frozen instant. The session
helper is the one of test_gurux_client_vs_simulator (a socket and Gurux's own reader loop).
gurux_dlms is GPLv2 and imported here, in tests only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

gurux = pytest.importorskip("gurux_dlms")

from gurux_dlms.objects import GXDLMSProfileGeneric
from tb_dlms.simulator.model import MeterOptions
from tb_dlms.simulator.server import SimulatorServer
from test_gurux_client_vs_simulator import GuruxSession, gx_time, lls_client

pytestmark = pytest.mark.interop

T0 = 1_700_000_437.0  # 2023-11-14T22:20:37Z
T_DST = dt.datetime(2024, 10, 27, 6, 0, tzinfo=dt.timezone.utc).timestamp()
UTC = dt.timezone.utc
PROFILES = [("1.0.99.1.0.255", "1-0:99.1.0"), ("1.0.98.1.0.255", "1-0:98.1.0"),
            ("0.0.99.98.0.255", "0-0:99.98.0")]


@pytest.fixture
def served():
    servers: list[SimulatorServer] = []

    def make(t: float = T0, **options: Any) -> tuple[SimulatorServer, GuruxSession]:
        server = SimulatorServer(2, 0, clock=lambda: t,
                                 options=MeterOptions(**options)).run_in_thread()
        servers.append(server)
        session = GuruxSession(server.ports[1], lls_client())
        session.open()
        return server, session

    yield make
    for server in servers:
        server.stop()


def gx_rows(pg: GXDLMSProfileGeneric) -> list[tuple[Any, ...]]:
    """Gurux's rows as (UTC datetime, other columns...)."""
    return [(gx_time(row[0]), *row[1:]) for row in pg.buffer]


def want(rows) -> list[tuple[Any, ...]]:
    return [(r.time.astimezone(UTC), *r.raw) for r in rows]


def read_by_range(session: GuruxSession, pg, start, end) -> list[tuple[Any, ...]]:
    reply = session.block(session.client.readRowsByRange(pg, start, end))
    session.client.updateValue(pg, 2, reply.value)
    return gx_rows(pg)


def read_by_entry(session: GuruxSession, pg, index: int, count: int) -> list[tuple[Any, ...]]:
    reply = session.block(session.client.readRowsByEntry(pg, index, count))
    session.client.updateValue(pg, 2, reply.value)
    return gx_rows(pg)


@pytest.mark.parametrize("ln, obis", PROFILES)
def test_gurux_reads_each_profile_by_range_and_entry(served, ln, obis):
    server, session = served()
    model = server.model(1)
    pg = GXDLMSProfileGeneric(ln)
    session.read(pg, 3)  # capture objects: Gurux needs them to parse rows
    rows = model.expected_profile_rows(obis)
    middle = rows[len(rows) // 2:len(rows) // 2 + 5]
    got = read_by_range(session, pg, middle[0].time, middle[-1].time)
    assert got == want(middle)
    assert read_by_entry(session, pg, middle[0].entry, len(middle)) == want(middle)
    # Everything at once: the biggest answer, in blocks (960 load profile rows).
    assert read_by_entry(session, pg, 1, 0) == want(rows)
    session.close()


def test_gurux_reads_a_week_of_load_profile_by_range(served):
    server, session = served()
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    session.read(pg, 3)
    rows = server.model(1).expected_profile_rows("1-0:99.1.0")[-672:]
    assert read_by_range(session, pg, rows[0].time, rows[-1].time) == want(rows)
    session.close()


def test_gurux_reads_the_repeated_october_hour_of_a_local_time_meter(served):
    server, session = served(T_DST, time_zone="Europe/Madrid")
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    session.read(pg, 3)
    start = dt.datetime(2024, 10, 26, 23, 30, tzinfo=UTC)
    end = dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC)
    rows = server.model(1).expected_profile_rows("1-0:99.1.0", start, end)
    assert len(rows) == 9  # 01:30..02:45 CEST, then 02:00..02:30 CET
    got = read_by_range(session, pg, start, end)
    assert got == want(rows)
    # Gurux's own decoding of the deviation: nine distinct instants, a quarter-hour apart.
    assert [b - a for a, b in zip([g[0] for g in got], [g[0] for g in got][1:])] == [
        dt.timedelta(minutes=15)] * 8
    session.close()


def test_gurux_entry_read_of_a_meter_without_range_access(served):
    server, session = served(profile_range_access=False)
    pg = GXDLMSProfileGeneric("0.0.99.98.0.255")
    session.read(pg, 3)
    rows = server.model(1).expected_profile_rows("0-0:99.98.0")
    refused = session.block(session.client.readRowsByRange(pg, rows[0].time, rows[-1].time))
    assert refused.error == 250  # other-reason, as Gurux reads it
    assert read_by_entry(session, pg, 91, 10) == want(rows[90:])  # the fallback works
    session.close()
