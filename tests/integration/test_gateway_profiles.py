"""A load-profile backfill through the REAL gateway, with the line to ThingsBoard cut for a while
and the gateway restarted in the middle: the stand-in receives every row of the meters' last
two days exactly once, at the capture time, with the meter's values.

The gateway runs with its sqlite storage (what a user who cannot lose billing data configures);
the broker outage is a relay between the gateway and the broker that drops every connection.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway
from tcp_cut import CuttableRelay

pytestmark = [pytest.mark.integration, needs_gateway, needs_broker, needs_connector]

KEY = "1-1:32.7.0.255"  # the profile's voltage column (default key: its OBIS code)
METERS = ("Meter-1", "Meter-2")


@pytest.fixture
def run(broker: Any, standin: Any, simulator: Any, gateway_factory: Any,
        tmp_path: Path) -> Iterator[SimpleNamespace]:
    from tb_dlms.commands.install import connector_entry
    from tb_dlms.sandbox.meters import simulator_dlms_config

    relay = CuttableRelay(broker.host, broker.port)
    sim = simulator(2)
    config = simulator_dlms_config(sim.ports, period_ms=1000, health_period_ms=5000)
    config["profileRowsPerSecond"] = 25  # slow enough to cut the line and restart mid-way
    for meter in config["meters"]:
        meter["profiles"] = [{"obis": "1-0:99.1.0.255", "backfillDays": 2, "maxRowsPerRead": 16}]

    def sqlite(settings: dict[str, Any]) -> None:
        settings["storage"] = {"type": "sqlite", "data_file_path": "./data/storage/",
                               "max_read_records_count": 100}

    def gateway() -> Any:
        return gateway_factory([connector_entry("dlms")], {"dlms.json": config}, install="dlms",
                               port=relay.port, main=sqlite, workdir=tmp_path / "gw", keep=True)

    try:
        yield SimpleNamespace(standin=standin, sim=sim, relay=relay, gateway=gateway)
    finally:
        relay.stop()


def profile_rows(standin: Any) -> dict[str, list[tuple[int, Any]]]:
    return {m: [(ts, v[KEY]) for _, ts, v in standin.telemetry(m) if KEY in v] for m in METERS}


def meter_truth(port: int) -> dict[int, Any]:
    """The meter's own rows (by entry, a plain session), ts -> voltage."""
    from tb_dlms.connector.profile_config import ProfileConfig
    from tb_dlms.connector.profile_reader import ProfileReader
    from tb_dlms.protocol.obis import Obis
    from tb_dlms.session import BlockingSession, SessionSettings
    from tb_dlms.transport import TcpTransport

    reader = ProfileReader("truth", ProfileConfig(Obis.parse("1-0:99.1.0.255"), backfill_days=3,
                                                  max_rows_per_read=500), None)
    reader.range_ok = False
    with BlockingSession(TcpTransport("127.0.0.1", port, 2.0), SessionSettings(client=16)) as s:
        s.connect()
        chunk = reader.read_chunk(s, None, int(time.time() * 1000))
    return {ts: values[KEY] for ts, values in chunk.rows}


def truth_span(truth: dict[int, Any], got: list[tuple[int, Any]]) -> dict[int, Any]:
    """The meter's rows from the first one delivered on."""
    first = min(ts for ts, _ in got)
    return {ts: v for ts, v in truth.items() if ts >= first}


@pytest.mark.timeout(240)
def test_backfill_survives_an_outage_and_a_restart_exactly_once(run: Any) -> None:
    standin, relay = run.standin, run.relay
    started_ms = int(time.time() * 1000)
    first = run.gateway()

    def delivered() -> int:
        return sum(len(rows) for rows in profile_rows(standin).values())

    standin.wait_for(lambda: delivered() >= 60, timeout=60)
    relay.cut()  # ThingsBoard unreachable: the gateway keeps what it gets in its storage
    time.sleep(4)
    during = delivered()
    relay.restore()
    standin.wait_for(lambda: delivered() >= during + 60, timeout=60)
    first.stop()  # a restart in the middle of the backfill
    assert delivered() < 2 * 190, "the backfill finished before the restart: slow it down"
    run.gateway()
    standin.wait_for(lambda: all(len({t for t, _ in r}) >= 190
                                 for r in profile_rows(standin).values()), timeout=120)
    time.sleep(3)  # anything that would come twice has time to come

    rows = profile_rows(standin)
    for name, port in zip(METERS, run.sim.ports):
        truth = meter_truth(port)
        got = rows[name]
        # The connector hands each row over once (its position is saved right after); the
        # gateway's sqlite storage may publish a batch again after a restart when it had not
        # marked it sent: the same value at the same timestamp, which ThingsBoard keeps once.
        repeats = Counter(ts for ts, _ in got)
        assert all(len({v for t, v in got if t == ts}) == 1 for ts in repeats if repeats[ts] > 1)
        print(f"{name}: {len(got)} received, {len(repeats)} distinct")
        first_ts = min(ts for ts, _ in got)
        assert first_ts - (started_ms - 2 * 86_400_000) < 900_000  # two days back
        assert dict(got) == truth_span(truth, got), f"{name}: rows missing or wrong"
