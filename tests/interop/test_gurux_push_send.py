"""Gurux (an independent implementation; test-only) decodes the DataNotifications our simulated
meters push: received on a real socket over the wrapper and over HDLC UI frames (segmented),
plain and ciphered under each policy, parsed by Gurux's GXDLMSNotify with the meter's keys."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import pytest

gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXDLMSNotify, GXReplyData  # noqa: E402
from gurux_dlms.enums import InterfaceType  # noqa: E402
from gurux_dlms.GXCiphering import GXCiphering  # noqa: E402
from tb_dlms.protocol.axdr import DataType, Typed  # noqa: E402
from tb_dlms.protocol.push import cipher_notification, encode_data_notification  # noqa: E402
from tb_dlms.protocol.security import GcmKey, SecurityContext  # noqa: E402
from tb_dlms.simulator.meter_models import registers_of  # noqa: E402
from tb_dlms.simulator.model import (  # noqa: E402
    GREEN_BOOK_AUTH_KEY,
    GREEN_BOOK_BLOCK_KEY,
    MeterOptions,
    server_system_title,
)
from tb_dlms.simulator.pusher import wrapper_frame  # noqa: E402
from tb_dlms.simulator.server import SimulatorServer  # noqa: E402

T0 = 1_796_380_000.0  # 2026-12-04T10:26:40Z, the meters' frozen clock
INDEX = 5


def gurux_notify(wrapper: bool, block_key: bytes = GREEN_BOOK_BLOCK_KEY) -> Any:
    if wrapper:
        notify = GXDLMSNotify(True, 1, 1, InterfaceType.WRAPPER)
    else:  # client 0x10, server logical 1 + the meter's physical address (16 + index)
        notify = GXDLMSNotify(True, 16, GXDLMSClient.getServerAddress(1, 16 + INDEX),
                              InterfaceType.HDLC)
    cipher = GXCiphering(server_system_title(INDEX))
    cipher.blockCipherKey, cipher.authenticationKey = block_key, GREEN_BOOK_AUTH_KEY
    notify.settings.cipher = cipher
    return notify


def gurux_receive(conn: socket.socket, notify: Any) -> GXReplyData:
    """Bytes from ``conn`` into Gurux until it has one whole notification."""
    buffer, reply = GXByteBuffer(), GXReplyData()
    conn.settimeout(5.0)
    while True:
        data = conn.recv(4096)
        assert data, "connection closed before a whole notification"
        buffer.set(data)
        while buffer.position < buffer.size:
            if not notify.getData(buffer, reply):
                break  # needs more bytes
            if reply.isComplete() and not reply.isMoreData():
                return reply


@pytest.mark.parametrize("wrapper", [True, False], ids=["wrapper", "hdlc"])
@pytest.mark.parametrize("security", ["", "auth", "enc", "auth-enc"])
def test_gurux_decodes_what_a_simulated_meter_pushes(wrapper, security) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5.0)
    options = MeterOptions(model="mono", wrapper=wrapper, max_info_field=48,
                           push_to="127.0.0.1:%d" % listener.getsockname()[1],
                           push_period_s=0.05, push_security=security, push_stagger=False)
    server = SimulatorServer(1, 0, options=options, wrapper=wrapper, clock=lambda: T0,
                             first_index=INDEX).run_in_thread()
    try:
        conn, _ = listener.accept()
        with conn:
            reply = gurux_receive(conn, gurux_notify(wrapper))
    finally:
        server.stop()
        listener.close()
    meter = server.model(0)
    values = list(reply.value)
    assert bytes(values[1]) == b"SIM%08d" % INDEX
    assert values[3:] == [meter.expected(r.spec.obis)[0] for r in registers_of("mono")]
    assert reply.time.value == dt.datetime.fromtimestamp(T0, dt.timezone.utc)
    assert reply.invokeId > 0


def test_gurux_does_not_decode_a_ciphered_push_with_another_block_key() -> None:
    # (Gurux's receiving side does not check the GMAC tag: a wrong authentication key alone
    # goes unnoticed there. Our PushOpener refuses it: tests/protocol/test_push_encode.py.)
    body = Typed(DataType.STRUCTURE, (Typed(DataType.DOUBLE_LONG_UNSIGNED, 1),))
    keys = SecurityContext(GcmKey(GREEN_BOOK_BLOCK_KEY, GREEN_BOOK_AUTH_KEY))
    apdu = cipher_notification(encode_data_notification(body), keys, "auth-enc",
                               server_system_title(INDEX), 3)
    good = GXReplyData()
    assert gurux_notify(True).getData(GXByteBuffer(wrapper_frame(apdu)), good)
    assert list(good.value) == [1]
    with pytest.raises(Exception):  # noqa: B017 - Gurux raises a bare ValueError/Exception
        gurux_notify(True, bytes(16)).getData(GXByteBuffer(wrapper_frame(apdu)), GXReplyData())
