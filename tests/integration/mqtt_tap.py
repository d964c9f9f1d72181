"""A loopback TCP relay to the broker that records what ONE MQTT client publishes.

Several gateways on one broker publish to the same topics (``v1/gateway/telemetry``), so the
stand-in cannot tell them apart; each gateway connects through its own tap, which reads the
PUBLISH packets going up (MQTT 3.1.1 or 5, as the CONNECT packet says) and keeps
``(topic, payload)``. The bytes are forwarded untouched.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import Any

_CONNECT, _PUBLISH = 1, 3


def _varint(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(value, next position) of an MQTT variable byte integer, None when cut short."""
    value, shift = 0, 0
    for i in range(pos, min(pos + 4, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    return None


class MqttTap:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._published: list[tuple[str, Any]] = []
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="mqtt-tap").start()

    def published(self, topic: str) -> list[Any]:
        with self._lock:
            return [p for t, p in self._published if t == topic]

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    def _down(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.close()

    def _up(self, source: socket.socket, sink: socket.socket) -> None:
        buffer, level = bytearray(), 4
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
                buffer += data
                level = self._packets(buffer, level)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.close()

    def _packets(self, buffer: bytearray, level: int) -> int:
        """Take every whole packet off ``buffer``; returns the protocol level seen."""
        while len(buffer) >= 2:
            length = _varint(buffer, 1)
            if length is None or length[1] + length[0] > len(buffer):
                return level
            size, start = length
            body, kind = bytes(buffer[start:start + size]), buffer[0] >> 4
            flags = buffer[0] & 0x0F
            del buffer[:start + size]
            if kind == _CONNECT:
                level = body[6]  # after the protocol name "MQTT" (2 + 4 bytes)
            elif kind == _PUBLISH:
                self._publish(body, (flags >> 1) & 3, level)
        return level

    def _publish(self, body: bytes, qos: int, level: int) -> None:
        n = int.from_bytes(body[:2], "big")
        topic, pos = body[2:2 + n].decode("utf-8", "replace"), 2 + n
        if qos:
            pos += 2  # packet identifier
        if level >= 5:
            props = _varint(body, pos)
            if props is None:
                return
            pos = props[1] + props[0]
        try:
            payload: Any = json.loads(body[pos:])
        except ValueError:
            payload = body[pos:]
        with self._lock:
            self._published.append((topic, payload))
