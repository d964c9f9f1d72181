"""A plain socket server standing in for a push receiver in the simulator's push tests: accepts
the meters' connections and cuts what they send into notification APDUs with our own framers."""

from __future__ import annotations

import socket
import time

from tb_dlms.protocol.hdlc import Frame, FrameKind
from tb_dlms.protocol.hdlc.framer import HdlcFramer
from tb_dlms.protocol.wrapper import WrapperFramer


class Receiver:
    def __init__(self, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:  # inherited by the accepted connections
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.conn: socket.socket | None = None
        self.raw = bytearray()  # every byte received on the current connection
        self.frames: list[Frame] = []  # HDLC: every frame received
        self._wrapper = WrapperFramer()
        self._hdlc = HdlcFramer(1 << 20)
        self._info = bytearray()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def accept(self, timeout: float = 5.0) -> socket.socket:
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        self.conn = conn
        self.raw.clear()
        self._wrapper, self._hdlc, self._info = WrapperFramer(), HdlcFramer(1 << 20), bytearray()
        return conn

    def apdus(self, count: int, wrapper: bool = True, timeout: float = 5.0) -> list[bytes]:
        """The next ``count`` APDUs from the current connection (accepted if none yet)."""
        conn = self.conn or self.accept(timeout)
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while True:
            out += self._cut(wrapper)
            if len(out) >= count:
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(out)} of {count} notifications in {timeout} s")
            conn.settimeout(left)
            data = conn.recv(65536)
            if not data:
                raise ConnectionError(f"closed after {len(out)} of {count} notifications")
            self.raw += data
            (self._wrapper if wrapper else self._hdlc).feed(data)

    def _cut(self, wrapper: bool) -> list[bytes]:
        out: list[bytes] = []
        if wrapper:
            while (pdu := self._wrapper.next_pdu()) is not None:
                assert (pdu.source, pdu.destination) == (1, 1)
                out.append(pdu.apdu)
            return out
        while (frame := self._hdlc.next_frame()) is not None:
            assert frame.kind is FrameKind.UI
            self.frames.append(frame)
            self._info += frame.info
            if not frame.segmented:
                assert self._info[:3] == b"\xe6\xe7\x00"
                out.append(bytes(self._info[3:]))
                self._info.clear()
        return out

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.sock.close()
