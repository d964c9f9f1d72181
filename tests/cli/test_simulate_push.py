"""``tb-dlms simulate --push-to ... --push-period ...``: the push options reach every process
of a fleet; the pushes open with the meters' keys; the stopped line counts them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

from tb_dlms.protocol.push import PushOpener
from tb_dlms.protocol.security import GcmKey, SecurityContext
from tb_dlms.protocol.wrapper import WrapperFramer
from tb_dlms.simulator.model import server_system_title
from tb_dlms.testing.ports import free_port_range

KEY = "00112233445566778899AABBCCDDEEFF"


def test_a_two_process_fleet_pushes_ciphered_from_every_meter() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(20.0)
    base = free_port_range(2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tb_dlms.cli", "simulate", "--count", "2", "--processes", "2",
         "--base-port", str(base), "--wrapper", "--push-to",
         f"127.0.0.1:{listener.getsockname()[1]}", "--push-period", "0.2",
         "--push-security", "auth-enc", "--push-suite-id", "1", "--block-key", KEY,
         "--auth-key", KEY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    keys = SecurityContext(GcmKey(bytes.fromhex(KEY), bytes.fromhex(KEY)))
    opener = PushOpener({server_system_title(i): keys for i in range(2)})
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "pushing to 127.0.0.1:" in line and "every 0.2 s (auth-enc)" in line, line
        titles = set()
        for _ in range(2):  # one connection per meter, each from its own process
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10.0)
                framer = WrapperFramer()
                while (pdu := framer.next_pdu()) is None:
                    framer.feed(conn.recv(4096))
                assert pdu.apdu[11] & 0x0F == 1  # suite id 1 in the security control byte
                note = opener.open(pdu.apdu)
                assert note.protection == "auth-enc"
                titles.add(note.system_title)
        assert titles == {server_system_title(0), server_system_title(1)}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        listener.close()
    assert proc.returncode == 0, err
    assert "pushes (" in out and "sent" in out, out


def test_a_bad_push_destination_is_refused_with_the_field_named() -> None:
    out = subprocess.run([sys.executable, "-m", "tb_dlms.cli", "simulate", "--base-port", "0",
                          "--push-to", "nowhere"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "push_to must be HOST:PORT" in out.stderr, out.stderr
