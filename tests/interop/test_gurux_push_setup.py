"""The push setup RPCs against a Gurux meter's GXDLMSPushSetup (gurux_dlms's server and object
model; GPLv2, tests only): read what Gurux encodes, write a destination and an object list,
read them back, and check what Gurux's object then holds. The RPCs run through the dispatcher
on a real BlockingSession (HLS-GMAC, auth-enc) over loopback TCP.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any, Callable

import pytest

pytest.importorskip("gurux_dlms")

from gurux_dlms.objects.enums import MessageType, ServiceType  # noqa: E402
from gurux_server import PUSH_DESTINATION, GuruxTcpServer, gurux_meters  # noqa: E402
from tb_dlms.connector.config import load_config  # noqa: E402
from tb_dlms.connector.push_setup_rpc import PushSetupRpcs  # noqa: E402
from tb_dlms.connector.rpc import RpcDispatcher  # noqa: E402
from tb_dlms.protocol.push_setup import MESSAGES, TRANSPORTS  # noqa: E402
from tb_dlms.session import BlockingSession, SessionSettings  # noqa: E402
from tb_dlms.transport import TcpTransport  # noqa: E402

pytestmark = pytest.mark.interop

BLOCK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AUTH = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
TITLE = b"TBDLMS01"
CLOCK = {"classId": 8, "obis": "0-0:1.0.0.255", "attribute": 2, "dataIndex": 0}
ENERGY = {"classId": 3, "obis": "1-0:1.8.0.255", "attribute": 2, "dataIndex": 0}
LDN = {"classId": 1, "obis": "0-0:42.0.0.255", "attribute": 2, "dataIndex": 0}


class SessionEngine:
    """The engine's submit() on one live session: each job runs at once, on this thread."""

    def __init__(self, session: BlockingSession) -> None:
        self.session = session

    def submit(self, name: str, fn: Callable[[Any], Any], timeout_s: float = 30.0) -> Future[Any]:
        f: Future[Any] = Future()
        try:
            f.set_result(fn(self.session))
        except BaseException as exc:  # noqa: BLE001 - like a worker: the future carries it
            f.set_exception(exc)
        return f


@pytest.fixture
def gurux() -> Iterator[Callable[..., GuruxTcpServer]]:
    with gurux_meters(BLOCK, AUTH) as start:
        yield start


@pytest.fixture
def connect() -> Iterator[Callable[..., RpcDispatcher]]:
    sessions: list[BlockingSession] = []

    def make(server: GuruxTcpServer, push_setup: PushSetupRpcs | None = None) -> RpcDispatcher:
        settings = SessionSettings(client=1, authentication="hls-gmac", security="auth-enc",
                                   system_title=TITLE, block_key=BLOCK, auth_key=AUTH,
                                   invocation_counter=5, response_timeout=0.5, retries=1,
                                   operation_timeout=4.0, name="gurux")
        session = BlockingSession(TcpTransport("127.0.0.1", server.port, 2.0), settings)
        sessions.append(session)
        session.connect()
        cfg = load_config({"meters": [{"deviceName": "Gurux-1", "connection": {
            "type": "tcp", "host": "127.0.0.1", "port": server.port}}]})
        assert cfg.errors == ()
        return RpcDispatcher(SessionEngine(session), cfg.by_name, push_setup=push_setup)

    yield make
    for s in sessions:
        s.close()


def call(rpc: RpcDispatcher, method: str, params: Any = None) -> dict[str, Any]:
    future = rpc.device_rpc("Gurux-1", method, params)
    assert future.done()
    reply: dict[str, Any] = future.result()
    return reply


def test_blue_book_numbers_match_guruxs_enums() -> None:
    # An independent reading of the same table: Gurux's ServiceType and MessageType.
    for code, name in TRANSPORTS.items():
        if code <= 7:
            assert ServiceType(code).name.replace("_", "-").lower() == name
    assert MESSAGES[MessageType.COSEM_APDU] == "a-xdr"
    assert MESSAGES[MessageType.COSEM_APDU_XML] == "xml"


def test_read_what_gurux_holds_version_0(gurux, connect) -> None:
    rpc = connect(gurux(push_setup=0))
    reply = call(rpc, "push_setup_read")
    assert reply == {
        "success": True, "obis": "0-0:25.9.0.255", "objects": [CLOCK, ENERGY],
        "destination": PUSH_DESTINATION, "transport": "tcp", "message": "a-xdr",
        "communicationWindow": [{"start": "2026-01-01T00:00:00+00:00",
                                 "end": "2026-01-01T06:00:00+00:00"}],
        "randomisationStartInterval": 5, "numberOfRetries": 3, "repetitionDelay": 120,
    }


def test_read_tolerates_version_2_shapes(gurux, connect) -> None:
    # Version 2: object list entries carry a restriction and columns; repetition_delay is
    # structure {min, exponent, max}.
    rpc = connect(gurux(push_setup=2))
    reply = call(rpc, "push_setup_read")
    assert reply["success"] is True, reply
    assert reply["objects"] == [CLOCK, ENERGY]
    assert reply["repetitionDelay"] == {"min": 60, "exponent": 2, "max": 600}


def test_write_destination_and_objects_then_read_back(gurux, connect) -> None:
    server = gurux(push_setup=0)
    rpc = connect(server)
    reply = call(rpc, "push_setup_write", {
        "destination": "127.0.0.1:4063", "objects": [LDN, ENERGY],
        "numberOfRetries": 7, "repetitionDelay": 30})
    assert reply == {"success": True, "obis": "0-0:25.9.0.255", "destination": "127.0.0.1:4063",
                     "transport": "tcp", "message": "a-xdr",
                     "results": {"objects": "success", "destination": "success",
                                 "numberOfRetries": "success", "repetitionDelay": "success"}}
    back = call(rpc, "push_setup_read")
    assert back["objects"] == [LDN, ENERGY] and back["destination"] == "127.0.0.1:4063"
    assert (back["numberOfRetries"], back["repetitionDelay"]) == (7, 30)
    assert back["randomisationStartInterval"] == 5  # not written: kept
    # What Gurux's own object model now holds.
    push = server.meter.push
    assert push.destination == "127.0.0.1:4063"
    assert push.service == ServiceType.TCP and push.message == MessageType.COSEM_APDU
    assert [(int(obj.objectType), obj.logicalName, co.attributeIndex, co.dataIndex)
            for obj, co in push.pushObjectList] == [(1, "0.0.42.0.0.255", 2, 0),
                                                    (3, "1.0.1.8.0.255", 2, 0)]
    assert push.pushObjectList[0][0] is server.meter.ldn  # Gurux found its own object
    assert (push.numberOfRetries, push.repetitionDelay) == (7, 30)


def test_point_and_push_now(gurux, connect) -> None:
    server = gurux(push_setup=0)
    rpc = connect(server, PushSetupRpcs(listener_destination="10.1.2.3:4059"))
    reply = call(rpc, "push_setup_point", {"port": 4070})
    assert reply["success"] is True and reply["destination"] == "10.1.2.3:4070", reply
    assert server.meter.push.destination == "10.1.2.3:4070"
    assert call(rpc, "push_now") == {"success": True, "obis": "0-0:25.9.0.255"}


def test_an_object_gurux_does_not_have_is_a_clear_failure(gurux, connect) -> None:
    rpc = connect(gurux(push_setup=0))
    reply = call(rpc, "push_setup_read", {"obis": "0-0:25.9.0.1"})
    assert reply["success"] is False
    error = reply["error"]
    assert "Gurux-1" in error and "0-0:25.9.0.1" in error and "attribute 2" in error, error
