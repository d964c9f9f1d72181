"""Gurux's client (an independent implementation, test-only: GPLv2) reads the object list of the
"mono" and "ct" meter models, then reads registers it found there, scaled as the model says."""

from __future__ import annotations

import pytest

gurux = pytest.importorskip("gurux_dlms")

from gurux_dlms.enums import ObjectType
from gurux_dlms.objects import GXDLMSData, GXDLMSRegister
from tb_dlms.simulator import meter_models as mm
from tb_dlms.simulator.model import MeterOptions
from tb_dlms.simulator.objects import TABLES
from tb_dlms.simulator.server import SimulatorServer
from test_gurux_client_vs_simulator import T0, GuruxSession, lls_client


def _read_object_list_and_registers(model: str) -> None:
    server = SimulatorServer(1, 0, options=MeterOptions(model=model), clock=lambda: T0,
                             first_index=4).run_in_thread()
    try:
        session = GuruxSession(server.ports[0], lls_client())
        session.open()
        reply = session.block(session.client.getObjectsRequest())
        objects = session.client.parseObjects(reply.data, True)
        listed = sorted((int(o.objectType), o.logicalName) for o in objects)
        assert listed == sorted((d.class_id, d.obis.dotted()) for d in TABLES[model].defs)
        registers = [o for o in objects if o.objectType == ObjectType.REGISTER]
        assert len(registers) == len(mm.registers_of(model))
        for reg in registers:
            assert isinstance(reg, GXDLMSRegister)
            session.read(reg, 3)
            raw = session.read(reg, 2)
            want, scaler, unit = mm.expected(model, 4, reg.logicalName, T0)
            assert (raw, reg.scaler, int(reg.unit)) == (want, 10.0**scaler, unit), reg.logicalName
        firmware = GXDLMSData("1.0.0.2.0.255")
        assert bytes(session.read(firmware, 2)) == f"SIM-{model.upper()} 1.4.2".encode()
        session.close()
    finally:
        server.stop()


def test_gurux_reads_the_mono_meters_object_list():
    _read_object_list_and_registers("mono")


def test_gurux_reads_the_ct_meters_object_list():
    _read_object_list_and_registers("ct")
