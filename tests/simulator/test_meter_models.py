"""The three meter models (poly, mono, ct) read through our real client over TCP.

Truth: every register answers the pure function of (model, index, time) in meter_models; each
model's object_list lists exactly the objects written out below, with the rights its requests
get; each model's load profile reads by range with the rows the model says, its columns being
its own registers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tb_dlms.cli import main
from tb_dlms.protocol.apdu.common import DataAccessResult
from tb_dlms.protocol.axdr import Typed
from tb_dlms.protocol.obis import Obis
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator import meter_models as mm
from tb_dlms.simulator import values as v
from tb_dlms.simulator.model import MeterModel, MeterOptions
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

T0 = 1_700_000_437.0  # frozen: 2023-11-14T22:20:37Z
UTC = dt.timezone.utc
INDEX = 7  # the served meter's index (first_index): not 0, so the index reaches the values

COMMON = {(15, "0-0:40.0.0"), (8, "0-0:1.0.0"), (1, "0-0:96.1.0"), (1, "0-0:42.0.0"),
          (1, "0-0:43.1.0"), (7, "1-0:99.1.0"),
          (40, "0-0:25.9.0"), (40, "0-4:25.9.0"), (1, "0-0:97.98.0"),
          (1, "0-0:96.11.2")}  # push setups, alarms, disconnector event code
OBJECTS = {
    "mono": COMMON | {(1, "1-0:0.2.0"), (70, "0-0:96.3.10"), (3, "1-0:32.7.0"),
                      (3, "1-0:31.7.0"), (3, "1-0:1.7.0"), (3, "1-0:1.8.0"), (3, "1-0:2.8.0"),
                      (3, "1-0:14.7.0")},
    "ct": COMMON | {(1, "1-0:0.2.0"), (4, "1-0:1.6.0"), (7, "1-0:98.1.0"),
                    *((3, f"1-0:{c}.7.0") for c in (32, 52, 72, 31, 51, 71, 1, 3, 13, 14)),
                    *((3, f"1-0:{c}.8.0") for c in (1, 2, 3, 4))},
    "poly": COMMON | {(70, "0-0:96.3.10"), (7, "1-0:98.1.0"), (7, "0-0:99.98.0"),
                      (1, "0-0:96.11.0"), (3, "1-0:1.8.0"), (3, "1-0:2.8.0"), (4, "1-0:1.6.0"),
                      *((3, str(r.obis)) for r in v.REGISTERS)},
}


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[SimulatorServer] = []

    def start(model: str, count: int = 1) -> SimulatorServer:
        srv = SimulatorServer(count, 0, options=MeterOptions(model=model), clock=lambda: T0,
                              first_index=INDEX).run_in_thread()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def session(port: int) -> BlockingSession:
    s = BlockingSession(TcpTransport("127.0.0.1", port, 2.0),
                        SessionSettings(client=16, response_timeout=2.0))
    s.connect()
    return s


@pytest.mark.parametrize("model", mm.MODELS)
def test_every_register_reads_its_deterministic_value(serve, model):
    srv = serve(model)
    regs = mm.registers_of(model)
    with session(srv.ports[0]) as s:
        got = s.read([(3, str(r.spec.obis), 2) for r in regs])
        identity = s.read([(1, "0-0:96.1.0", 2), (1, "0-0:42.0.0", 2)])
    for reg, reading in zip(regs, got):
        raw, scaler, unit = mm.expected(model, INDEX, reg.spec.obis, T0)
        assert (reading.raw, reading.scaler) == (raw, scaler), (model, reg.spec.key)
        assert reading.value == v.scale(raw, scaler), (model, reg.spec.key)
    assert [r.value for r in identity] == [f"SIM{INDEX:08d}", f"SIMLDN{INDEX:010d}"]


def test_the_model_signals_hold_together():
    # mono is L1 of the same meter; ct's energies and powers derive from the same signals.
    t, tau = T0, int(T0) - v.EPOCH
    assert mm.expected("mono", 3, "1-0:32.7.0", t)[0] == v.expected(3, "1-1:32.7.0", t)[0]
    assert mm.expected("ct", 3, "1-0:1.8.0", t)[0] == v.energy_raw(3, tau) // 10
    p = v.active_power(3, t)
    q = mm.reactive_power(3, tau)
    pf = mm.expected("ct", 3, "1-0:13.7.0", t)[0] / 1000
    assert abs(pf - p / (p * p + q * q) ** 0.5) <= 0.0005 and 0.8 < pf < 1
    for key in ("1-0:1.8.0", "1-0:2.8.0", "1-0:3.8.0", "1-0:4.8.0"):  # energies only grow
        day = [mm.expected("ct", 3, key, t + h * 3600)[0] for h in range(25)]
        assert day == sorted(day) and day[-1] > day[0], key  # (export: not at night)
    one_hour = (mm.expected("mono", 3, "1-0:1.8.0", t + 3600)[0]
                - mm.expected("mono", 3, "1-0:1.8.0", t)[0])
    assert 0.5 < one_hour / v.phase_power(3, 0, t) < 1.5  # Wh in an hour ~ W of L1
    assert sum(v.phase_energy_wh_at(3, k, tau) for k in range(3)) == pytest.approx(
        v.energy_wh_at(3, tau), rel=1e-12)


@pytest.mark.parametrize("model", mm.MODELS)
def test_object_list_lists_exactly_the_models_objects_with_their_rights(serve, model):
    srv = serve(model)
    with session(srv.ports[0]) as s:
        (reading,) = s.read([(15, "0-0:40.0.0", 2)])
    listed = {(cid, str(Obis.from_bytes(ln))): rights for cid, _v, ln, rights in reading.raw}
    assert set(listed) == {(c, str(Obis.parse(o))) for c, o in OBJECTS[model]}
    assert len(reading.raw) == len(OBJECTS[model])
    meter = srv.model(0)
    for (cid, ln), (attrs, methods) in listed.items():
        for attr_id, mode, _selectors in attrs:
            got = meter.get(cid, ln, attr_id)
            assert isinstance(got, Typed) == bool(mode & 1), (model, cid, ln, attr_id)
            if not mode & 2:  # not writable: a SET is refused (value is irrelevant)
                assert meter.set(cid, ln, attr_id, 0) == DataAccessResult.READ_WRITE_DENIED
        assert all(m in (0, 1) for _, m in methods)
    load = listed[(7, "1-0:99.1.0.255")][0]
    assert load[1][1:] == (1, [1, 2])  # buffer: read-only, by range and by entry
    assert listed[(8, "0-0:1.0.0.255")][0][1][1] == 3  # clock time: read and write
    if model != "ct":
        assert listed[(70, "0-0:96.3.10.255")][0][3][1] == 3  # control mode: read and write
        assert listed[(70, "0-0:96.3.10.255")][1] == [(1, 1), (2, 1)]


@pytest.mark.parametrize("model", mm.MODELS)
def test_profile_columns_are_the_models_registers(model):
    meter = MeterModel(INDEX, options=MeterOptions(model=model), clock=lambda: T0)
    (reading,) = [meter.get(7, "1-0:99.1.0", 3)]
    columns = [(c.value[0].value, Obis.from_bytes(c.value[1].value)) for c in reading.value]
    assert columns[0] == (8, Obis.parse("0-0:1.0.0"))
    for cid, obis in columns[1:]:
        assert cid == 3 and isinstance(meter.get(3, obis, 2), Typed), (model, obis)
    row = meter.expected_profile_rows("1-0:99.1.0")[-1]
    at = row.time.timestamp()
    for (_cid, obis), raw in zip(columns[1:], row.raw):  # a row holds the registers then
        assert raw == mm.expected(model, INDEX, obis, at)[0], (model, obis)


@pytest.mark.parametrize("model", mm.MODELS)
def test_each_models_load_profile_reads_by_range(serve, model, capsys):
    srv = serve(model)
    end = dt.datetime.fromtimestamp(int(T0) // 900 * 900, UTC)
    start = end - dt.timedelta(hours=2)
    code = main(["read", "--host", "127.0.0.1", "--port", str(srv.ports[0]), "--timeout", "2",
                 "--from", start.isoformat(), "--to", end.isoformat(), "1-0:99.1.0.255/7/2"])
    out = json.loads(capsys.readouterr().out)["1-0:99.1.0.255/7/2"]
    assert code == 0
    want = srv.model(0).expected_profile_rows("1-0:99.1.0", start, end)
    assert len(want) == 9
    columns = [str(r) for r in out["columns"]]
    assert [row["time"] for row in out["rows"]] == [
        w.time.isoformat().replace("+00:00", "Z") for w in want]
    assert [tuple(row[c] for c in columns) for row in out["rows"]] == [w.values for w in want]


def test_mixed_fleet_models_and_the_profiles_each_has(serve):
    assert [mm.model_of(i, "mixed") for i in range(5)] == ["poly", "mono", "ct", "poly", "mono"]
    assert mm.model_of(9, "ct") == "ct"
    with pytest.raises(ValueError, match="meter model"):
        mm.model_of(0, "three-phase")
    srv = SimulatorServer(3, 0, options=MeterOptions(model="mixed"), clock=lambda: T0)
    kinds = [srv.model(i).model_name for i in range(3)]
    assert kinds == ["poly", "mono", "ct"]
    billing = [isinstance(srv.model(i).get(7, "1-0:98.1.0", 7), Typed) for i in range(3)]
    assert billing == [True, False, True]
    assert srv.model(1).get(1, "1-0:0.2.0", 2).value == b"SIM-MONO 1.4.2"
    assert srv.model(2).get(70, "0-0:96.3.10", 2) == DataAccessResult.OBJECT_UNDEFINED
    with pytest.raises(Exception, match="no simulated profile"):
        srv.model(1).expected_profile_rows("1-0:98.1.0")


def test_a_disconnected_mono_meter_stops_its_energy_and_zeroes_power():
    clock = [T0]
    meter = MeterModel(INDEX, options=MeterOptions(model="mono"), clock=lambda: clock[0])
    assert meter.action(70, "0-0:96.3.10", 1, 0)[0] == 0  # remote disconnect
    before = meter.get(3, "1-0:1.8.0", 2).value
    clock[0] += 3600
    assert meter.get(3, "1-0:1.8.0", 2).value == before
    assert meter.get(3, "1-0:1.7.0", 2).value == 0 and meter.get(3, "1-0:31.7.0", 2).value == 0
    assert meter.get(3, "1-0:32.7.0", 2).value > 2000  # voltage stays


def test_unknown_model_is_refused():
    with pytest.raises(Exception, match="model must be one of"):
        MeterOptions(model="three-phase")
