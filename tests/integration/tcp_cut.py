"""A loopback TCP relay whose line can be cut and restored: the network between the gateway
and ThingsBoard failing, while the broker (and the stand-in on it) stay up."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class CuttableRelay:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._up = True
        self._drop = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="relay")
        self._thread.start()

    def cut(self) -> None:
        """Drop every connection (within 0.1 s) and refuse new ones until ``restore``."""
        with self._lock:
            self._up = False
            self._drop = True

    def restore(self) -> None:
        with self._lock:
            self._up = True

    def stop(self) -> None:
        self._stop.set()
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(2)

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, None)
        while not self._stop.is_set():
            with self._lock:
                drop, self._drop = self._drop, False
                pairs = self._pairs if drop else []
                if drop:
                    self._pairs = []
            for pair in pairs:
                for s in pair:
                    with contextlib.suppress(KeyError, ValueError, OSError):
                        sel.unregister(s)
                    with contextlib.suppress(OSError):
                        s.close()
            for key, _ in sel.select(0.1):
                if key.data is None:
                    self._accept(sel)
                else:
                    self._pump(sel, key.fileobj, key.data)  # type: ignore[arg-type]

    def _accept(self, sel: selectors.BaseSelector) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        with self._lock:
            up = self._up
        if not up:
            client.close()
            return
        try:
            server = socket.create_connection(self.target, timeout=2)
        except OSError:
            client.close()
            return
        with self._lock:
            self._pairs.append((client, server))
        sel.register(client, selectors.EVENT_READ, server)
        sel.register(server, selectors.EVENT_READ, client)

    def _pump(self, sel: selectors.BaseSelector, source: socket.socket,
              sink: socket.socket) -> None:
        try:
            data = source.recv(65536)
            if data:
                sink.sendall(data)
                return
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(KeyError, ValueError, OSError):
                sel.unregister(s)
            with contextlib.suppress(OSError):
                s.close()
