"""Open files at fleet scale: the soft limit raised, meter sockets above 1,023 so that the
gateway's MQTT client (paho, select()-based) can still (re)connect with 1,000+ meters open."""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
import textwrap

import pytest
from tb_dlms.connector import open_files
from tb_dlms.transport.fd_limits import LOW_FDS, OpenFileLimit

HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
pytestmark = pytest.mark.skipif(HARD != resource.RLIM_INFINITY and HARD < 4096,
                                reason="the hard open-file limit leaves no room above 1,024")


def run_with_soft_limit(soft: int, code: str) -> dict:
    """``code`` in a child whose soft RLIMIT_NOFILE starts at ``soft``; it prints JSON."""
    prelude = ("import resource\n"
               f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, "
               "resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n")
    out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_soft_limit_is_raised_to_what_the_meters_need_and_no_further() -> None:
    got = run_with_soft_limit(512, """
        import json, resource
        from tb_dlms.transport.fd_limits import raise_open_file_limit
        limit = raise_open_file_limit(2000)
        print(json.dumps([*limit, limit.enough, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
    """)
    wanted = LOW_FDS + 256 + 2000
    assert got == [512, wanted, got[2], wanted, True, wanted]


def test_a_hard_limit_below_the_need_is_reported_not_enough() -> None:
    got = run_with_soft_limit(512, """
        import json, resource
        from tb_dlms.transport.fd_limits import raise_open_file_limit
        limit = raise_open_file_limit(10**7)
        print(json.dumps([limit.after, limit.hard, limit.enough,
                          resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
    """)
    after, hard, enough, soft_now = got
    assert not enough and after == hard == soft_now  # as far as it may go


def test_a_platform_capping_the_soft_limit_below_the_hard_one_gets_the_cap(monkeypatch) -> None:
    """macOS: hard RLIM_INFINITY, but a soft limit over OPEN_MAX (10,240) is refused."""
    from tb_dlms.transport import fd_limits

    class MacResource:
        RLIMIT_NOFILE, RLIM_INFINITY = resource.RLIMIT_NOFILE, resource.RLIM_INFINITY
        soft = 256

        def getrlimit(self, which: int) -> tuple[int, int]:
            return self.soft, self.RLIM_INFINITY

        def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
            if limits[0] > 10240:
                raise ValueError("invalid argument")
            self.soft = limits[0]

    fake = MacResource()
    monkeypatch.setattr(fd_limits, "resource", fake)
    limit = fd_limits.raise_open_file_limit(20000)
    assert (limit.before, limit.after, fake.soft, limit.enough) == (256, 10240, 10240, False)
    assert fd_limits.raise_open_file_limit(2000).after == 10240  # already enough: untouched


def test_the_error_says_what_to_set(monkeypatch, caplog) -> None:
    meters = [type("M", (), {"spec": type("S", (), {"transport": type("T", (), {
        "channel_key": f"tcp h:{i}"})()})()})() for i in range(3000)]
    monkeypatch.setattr(open_files, "raise_open_file_limit",
                        lambda n: OpenFileLimit(1024, 2048, 2048, 1280 + n))
    with caplog.at_level(logging.INFO):
        open_files.ensure_open_files(meters, logging.getLogger("t"), "DLMS")
    assert "open-file limit raised from 1024 to 2048 for 3000 meter connections" in caplog.text
    assert "3000 meter connections need an open-file limit of about 4280" in caplog.text
    assert "ulimit -n 4280" in caplog.text and "nofile=4280:4280" in caplog.text
    assert "LimitNOFILE=4280" in caplog.text


PAHO_AFTER_1100_METERS = """
    import json, socket, threading, time
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from tb_dlms.sandbox import Broker
    from tb_dlms.transport.tcp import start_connect
    listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(4096)
    address = (socket.AF_INET, listener.getsockname())
    meters = [start_connect(address, "meter") for _ in range(1100)]
    broker = Broker().start()
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_connect = lambda *a: connected.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    ok = connected.wait(5.0)
    client.loop_stop(); broker.stop()
    print(json.dumps([ok, min(s.fileno() for s in meters), client.socket() is None or
                      client.socket().fileno()]))
"""


def test_the_gateway_mqtt_client_still_connects_with_1100_meter_sockets_open() -> None:
    # Before: the meter sockets took numbers 3..1102, paho's socket got 1105 and its select()
    # loop failed on it without a word: the gateway never reached ThingsBoard again.
    ok, lowest_meter_fd, _ = run_with_soft_limit(4096, PAHO_AFTER_1100_METERS)
    assert ok, "paho never connected"
    assert lowest_meter_fd >= LOW_FDS


def test_without_room_above_1024_meter_sockets_stay_low_and_work() -> None:
    got = run_with_soft_limit(1024, """
        import json, socket
        from tb_dlms.transport.tcp import TcpTransport, start_connect
        listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(8)
        port = listener.getsockname()[1]
        s = start_connect((socket.AF_INET, ("127.0.0.1", port)), "meter")
        t = TcpTransport("127.0.0.1", port, connect_timeout=2.0); t.open()
        peer, _ = listener.accept(); peer, _ = listener.accept()
        t.write(b"ping"); print(json.dumps([s.fileno() < 1024, peer.recv(4).decode()]))
    """)
    assert got == [True, "ping"]


def test_the_blocking_transport_moves_its_socket_high_and_keeps_its_timeout() -> None:
    got = run_with_soft_limit(4096, """
        import json, socket
        from tb_dlms.transport.tcp import TcpTransport
        listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(8)
        t = TcpTransport("127.0.0.1", listener.getsockname()[1], connect_timeout=2.0); t.open()
        peer, _ = listener.accept()
        peer.sendall(b"pong")
        sock = t._sock
        print(json.dumps([sock.fileno() >= 1024, sock.gettimeout(), t.read(1.0).decode()]))
    """)
    assert got == [True, 2.0, "pong"]
