"""Simulated meters pushing DataNotifications, on the simulator server's own loop (no thread).

Each meter with a Push setup destination keeps one TCP connection to it (opened on the first
push, reopened with back-off 0.5 s doubling to 30 s when it drops or is refused) and sends:

- its regular push (Push setup 0-0:25.9.0.255) every ``push_period_s``; the first one at
  ``period * frac(index * 0.618...)`` so a fleet's pushes spread over the period
  (``push_stagger``), else at once;
- a push whenever the model asks (method 1 of either Push setup, an alarm: push_setup.py).

The destination is read from the Push setup's attribute 3 at every push: a client's write
redirects the next push (the old connection is closed). The notification's date-time is the
meter clock (local time with deviation, as the clock object gives it); one counter per meter,
started from the time (tenths of a second since 2020-09-13) so a restarted simulator does not
replay, is the long-invoke-id (low 24 bits) and, when ciphered, the invocation counter.

Framing follows the server's: the IEC 62056-47 wrapper (source wPort 1, the management logical
device; destination wPort 1, what Gurux's push examples use), or HDLC UI frames (control 0x13,
source the meter's server address logical 1 + its physical address, destination client 0x10,
LLC E6 E7 00, segmented beyond the meter's max information field).

One connection per meter: when the alarm Push setup points elsewhere than the regular one, each
push to the other destination switches the connection (what waited for the old one is dropped
and counted), so point both at the same receiver.

Bounded: at most ``push_buffer_bytes`` of whole notifications wait per meter; a push that does
not fit is dropped and counted (``dropped``), so a receiver that stops reading costs no memory.
"""

from __future__ import annotations

import logging
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..protocol.cosem_datetime import CosemDateTime
from ..protocol.hdlc import Frame, FrameKind, HdlcAddress, encode_frame
from ..protocol.push import cipher_notification, encode_data_notification
from ..protocol.security import GcmKey, SecurityContext
from ..protocol.wrapper import encode_wrapper
from .connection import SimulatedMeter
from .model import server_system_title
from .push_setup import PUSH_OBIS, parse_destination, push_body

__all__ = ["PUSH_CLIENT_HDLC", "PUSH_WPORT", "PushLink", "Pusher", "hdlc_ui_frames",
           "wrapper_frame"]

PUSH_WPORT = 1  # wrapper source and destination wPort
PUSH_CLIENT_HDLC = 0x10  # HDLC destination (client) address of a push
_LLC = b"\xe6\xe7\x00"
_COUNTER_EPOCH = 1_600_000_000
_SNDBUF = 16384  # a meter's small TCP stack: the kernel holds little on its behalf either
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_log = logging.getLogger("tb_dlms.simulator.push")


def wrapper_frame(apdu: bytes) -> bytes:
    return encode_wrapper(apdu, PUSH_WPORT, PUSH_WPORT)


def hdlc_ui_frames(apdu: bytes, physical: int, max_info: int) -> bytes:
    """``apdu`` behind the LLC header in UI frames of at most ``max_info`` information bytes,
    all but the last with the segmentation bit."""
    info = _LLC + apdu
    source = HdlcAddress.server(1, physical)
    client = HdlcAddress(PUSH_CLIENT_HDLC)
    chunks = [info[i:i + max_info] for i in range(0, len(info), max_info)]
    return b"".join(encode_frame(Frame(FrameKind.UI, client, source, True,
                                       segmented=k < len(chunks) - 1, info=chunk))
                    for k, chunk in enumerate(chunks))


class PushLink:
    """One meter's push connection and counters."""

    __slots__ = ("connected", "counter", "dest", "dropped", "failures", "last", "meter",
                 "pushes", "queue", "queued", "retry_at", "backoff", "head_sent", "sent",
                 "sock", "connects", "context", "online")

    def __init__(self, meter: SimulatedMeter) -> None:
        self.meter = meter
        self.sock: socket.socket | None = None
        self.dest: tuple[str, int] | None = None
        self.connected = False
        self.queue: deque[bytes] = deque()  # whole framed notifications waiting
        self.queued = 0  # their bytes
        self.head_sent = 0  # bytes of queue[0] already written
        self.backoff = 0.0
        self.retry_at = 0.0
        self.counter = max(1, int((time.time() - _COUNTER_EPOCH) * 10) & 0xFFFFFFFF)
        self.last: bytes | None = None  # the previous framed notification (replay option)
        self.context: SecurityContext | None = None
        self.pushes = 0  # notifications made
        self.sent = 0  # notifications written whole to the socket
        self.dropped = 0  # notifications lost: buffer full, cut by a dropped connection
        self.failures = 0  # connections refused or dropped
        self.connects = 0
        self.online = True  # False while the server has the meter off the network


class Pusher:
    """The pushes of a server's meters: ``schedule(delay, fn, *args)`` and ``call_soon(fn)``
    (thread-safe) are the server loop's; sockets are registered in ``selector`` with their
    PushLink as data, and the loop hands their events to ``on_event``."""

    def __init__(self, meters: list[SimulatedMeter], wrapper: bool,
                 selector: selectors.BaseSelector, schedule: Callable[..., None],
                 call_soon: Callable[[Callable[[], None]], None]) -> None:
        self._sel = selector
        self._schedule = schedule
        self._call_soon = call_soon
        self.wrapper = wrapper
        self.links = [PushLink(m) for m in meters]
        self._by_meter = {link.meter: link for link in self.links}
        self._closed = False

    def set_online(self, meter: SimulatedMeter, online: bool) -> None:
        """The server took ``meter`` off the network (or back): an offline meter does not push
        and its push connection is closed, what waited in it dropped."""
        link = self._by_meter[meter]
        link.online = online
        if not online:
            self._disconnect(link)
            link.dropped += len(link.queue)
            link.queue.clear()
            link.queued = 0

    def start(self) -> None:
        for link in self.links:
            options = link.meter.options
            link.meter.model.push.listener = self._doorbell(link)
            period = options.push_period_s
            if period > 0:
                first = period * ((link.meter.index * 0.6180339887) % 1.0)
                self._schedule(first if options.push_stagger else 0.0, self._tick, link)

    def _doorbell(self, link: PushLink) -> Callable[[bytes], None]:
        # Called from any thread (a test firing a trigger, or the loop serving an ACTION).
        return lambda obis: self._call_soon(lambda: self.push_now(link, obis))

    def close(self) -> None:
        self._closed = True
        for link in self.links:
            link.meter.model.push.listener = None
            self._disconnect(link)

    @property
    def stats(self) -> dict[str, int]:
        return {name: sum(getattr(link, name) for link in self.links)
                for name in ("pushes", "sent", "dropped", "failures", "connects")}

    # -- pushing ------------------------------------------------------------------------------
    def _tick(self, link: PushLink) -> None:
        if self._closed:
            return
        self.push_now(link, PUSH_OBIS.to_bytes())
        self._schedule(link.meter.options.push_period_s, self._tick, link)

    def push_now(self, link: PushLink, obis: bytes) -> None:
        """One notification of Push setup ``obis`` towards its current destination."""
        if self._closed or not link.online:
            return
        setup = link.meter.model.push.setup(obis)
        dest = parse_destination(setup.destination)
        if dest is None:
            return  # no destination (yet): the meter does not push
        if dest != link.dest:  # attribute 3 was written: what waited was for the old one
            self._disconnect(link)
            link.dropped += len(link.queue)
            link.queue.clear()
            link.queued = link.head_sent = 0
            link.dest, link.backoff, link.retry_at = dest, 0.0, 0.0
        try:
            message = self._message(link, obis)
        except Exception:  # noqa: BLE001 - a bad object list costs this push, not the loop
            _log.exception("meter %d: push not built", link.meter.index)
            return
        self._enqueue(link, message)
        every = link.meter.options.push_replay_every
        if every and link.pushes % every == 0 and link.last is not None:
            self._enqueue(link, link.last)  # the previous notification again, byte for byte
        link.last = message
        if link.sock is None:
            if time.monotonic() >= link.retry_at:
                self._connect(link)
        elif link.connected:
            self._flush(link)

    def _message(self, link: PushLink, obis: bytes) -> bytes:
        meter, options = link.meter, link.meter.options
        model = meter.model
        link.counter = (link.counter + 1) & 0xFFFFFFFF
        link.pushes += 1
        stamp = CosemDateTime.from_bytes(model.get_clock().value)
        apdu = encode_data_notification(push_body(model, model.push.setup(obis)),
                                        long_invoke_id=link.counter & 0xFFFFFF, date_time=stamp)
        if options.push_security:
            if link.context is None:
                link.context = SecurityContext(GcmKey(options.block_key, options.auth_key))
            apdu = cipher_notification(apdu, link.context, options.push_security,
                                       server_system_title(meter.index), link.counter,
                                       options.push_suite_id)
        if self.wrapper:
            return wrapper_frame(apdu)
        return hdlc_ui_frames(apdu, meter.physical, options.max_info_field)

    def _enqueue(self, link: PushLink, message: bytes) -> None:
        if link.queued + len(message) > link.meter.options.push_buffer_bytes:
            link.dropped += 1
            return
        link.queue.append(message)
        link.queued += len(message)

    # -- the connection -----------------------------------------------------------------------
    def _connect(self, link: PushLink) -> None:
        if link.dest is None or self._closed:
            return
        sock = socket.socket(socket.AF_INET6 if ":" in link.dest[0] else socket.AF_INET,
                             socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
        try:
            sock.connect(link.dest)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            sock.close()
            self._failed(link, exc)
            return
        link.sock, link.connected = sock, False
        self._sel.register(sock, _READ | _WRITE, link)

    def on_event(self, link: PushLink, mask: int) -> None:
        sock = link.sock
        if sock is None:
            return
        if not link.connected:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self._failed(link, OSError(error, "connect failed"))
                return
            if not mask & _WRITE:
                return
            link.connected, link.backoff = True, 0.0
            link.connects += 1
            self._flush(link)
            return
        if mask & _READ:
            try:
                data = sock.recv(4096)  # a receiver says nothing; whatever it says is dropped
            except (BlockingIOError, InterruptedError):
                data = b"-"
            except OSError:
                data = b""
            if not data:
                self._failed(link, None)
                return
        if mask & _WRITE and link.sock is not None:
            self._flush(link)

    def _flush(self, link: PushLink) -> None:
        sock = link.sock
        assert sock is not None
        while link.queue:
            head = link.queue[0]
            try:
                n = sock.send(memoryview(head)[link.head_sent:])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._failed(link, exc)
                return
            link.head_sent += n
            if link.head_sent < len(head):
                break
            link.queue.popleft()
            link.queued -= len(head)
            link.head_sent = 0
            link.sent += 1
        self._sel.modify(sock, _READ | (_WRITE if link.queue else 0), link)

    def _failed(self, link: PushLink, exc: OSError | None) -> None:
        if link.failures == 0 or link.connected:  # a dead receiver is logged once per outage
            _log.info("meter %d: push connection to %s:%d %s", link.meter.index,
                      *(link.dest or ("?", 0)), f"failed: {exc}" if exc else "closed")
        link.failures += 1
        self._disconnect(link)
        link.backoff = min(30.0, max(0.5, link.backoff * 2))
        link.retry_at = time.monotonic() + link.backoff
        self._schedule(link.backoff, self._retry, link, link.dest)

    def _retry(self, link: PushLink, dest: Any) -> None:
        if link.sock is None and link.dest == dest and link.online and not self._closed:
            self._connect(link)

    def _disconnect(self, link: PushLink) -> None:
        sock = link.sock
        if sock is None:
            return
        link.sock, link.connected = None, False
        if link.head_sent:  # cut in the middle: the receiver got a torn frame, not this one
            link.queued -= len(link.queue.popleft())
            link.head_sent = 0
            link.dropped += 1
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
