"""Connect and close of ``SessionMachine``, as generators: SNRM/UA then AARQ/AARE (HLS passes
included), the invocation counter taken from the meter's frame counter when unknown or refused
(once), release (RLRQ) and DISC. The exchanges under them live in ``machine_ops``.
"""

from __future__ import annotations

from ..protocol.apdu import AttributeDescriptor
from ..protocol.apdu.xdlms import Conformance
from ..protocol.association import Associated, Association, AssociationState, GetResult, Role
from ..protocol.axdr import Typed
from ..protocol.errors import (
    AssociationError,
    AuthenticationError,
    DlmsError,
    InvocationCounterRejected,
    RemoteProtocolError,
)
from ..protocol.hdlc import Connected
from ..protocol.security import InvocationCounter
from .channel import make_channel
from .machine_ops import MachineOpsMixin, Op, SessionState, describe_event
from .trace import secret_span

__all__ = ["ConnectOpsMixin"]


class ConnectOpsMixin(MachineOpsMixin):
    """Connect and close of ``SessionMachine`` (see the module doc)."""

    # -- connect / close -----------------------------------------------------------------
    def _connect_op(self) -> Op:
        s = self.settings
        counter = s.counter if s.ciphered else None
        try:
            self.scalers.invalidate()
            self._last_plan = None
            self._timeout = s.connect_timeout
            synced = None
            if counter is not None and not counter.known:
                synced = yield from self._sync_counter_op(counter)
            try:
                event = yield from self._associate_op()
            except AssociationError:
                # Refused: perhaps our counter (a lost state, a replay): one re-synchronisation.
                if counter is None or synced is not None or not s.counter_resync:
                    raise
                self.log.info("%s: association refused; re-synchronising the invocation "
                              "counter with the meter's frame counter", self.name)
                yield from self._quietly(self.channel.disconnect())
                last = yield from self._sync_counter_op(counter)
                try:
                    event = yield from self._associate_op()
                except AssociationError as again:
                    if isinstance(again, InvocationCounterRejected):
                        raise  # the meter says so: the counter it gave is not one it takes
                    # A counter fresh from the meter refused: the keys or the system title
                    # (credentials: the engine retries slowly and raises auth_failed).
                    raise AuthenticationError(
                        f"{again} (with the invocation counter re-synchronised from the "
                        f"meter's frame counter {last}: check the keys and the client system "
                        "title)", again.result, again.diagnostic) from again
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._mask = None
            self._timeout = s.response_timeout
            error = self._record(exc, "connect failed")
            yield from self._shutdown_op(False)
            if error is None:
                raise
            raise error from exc
        self._timeout = s.response_timeout
        self.conformance = event.conformance
        self.with_list.associated(
            bool(event.conformance & Conformance.MULTIPLE_REFERENCES), int(event.conformance)
        )
        self.state = SessionState.READY
        self.log.debug(
            "%s: associated (%s, server max PDU %d)",
            self.name,
            ", ".join(event.conformance.labels),
            event.server_max_pdu_size,
        )

    def _associate_op(self) -> Op:
        """SNRM/UA (none with the wrapper) then AARQ/AARE, over a fresh link and association:
        the ``Associated`` event (the HLS passes 3-4 included), or an error."""
        s = self.settings
        self.channel.reset()
        self.assoc.reset()
        self._write(self.channel.connect())
        event = yield from self._await(s.retries)
        if type(event) is not Connected:
            raise RemoteProtocolError(f"link not established: {describe_event(event)}")
        aarq = self.assoc.associate()
        self._mask = secret_span(aarq, s.password) if s.authentication == "lls" else None
        self.requests += 1
        self._write(self.channel.send(aarq))
        event = yield from self._await(s.retries)
        self._mask = None
        if type(event) is not Associated:
            raise RemoteProtocolError(f"association not established: {describe_event(event)}")
        return event

    def _sync_counter_op(self, counter: InvocationCounter) -> Op:
        """Read the frame counter (the last invocation counter the meter took from us) with the
        public client over the same transport, release, and continue our counter above it."""
        s = self.settings
        public = s.public()
        kept = self.channel, self.assoc
        self.channel = make_channel(public)
        self.assoc = Association(Role.CLIENT, public.association_settings())
        what = f"frame counter {s.frame_counter}"
        try:
            yield from self._associate_op()
            desc = AttributeDescriptor(1, s.frame_counter, 2)
            event = yield from self._request(lambda: self.assoc.get(desc))
            value = event.results[0] if type(event) is GetResult else event
            if isinstance(value, Typed):
                value = value.value
            # type(), not isinstance: a refusal comes as a DataAccessResult, an int enum.
            if type(value) is not int or value < 0:
                raise RemoteProtocolError(f"not a counter ({getattr(value, 'label', value)!r})")
            yield from self._quietly(self.channel.send(self.assoc.release()))
            yield from self._quietly(self.channel.disconnect())
        except DlmsError as exc:  # the same error (type, fields), saying what was being done
            exc.args = (f"reading the {what} with the public client: {exc.args[0]}",
                        *exc.args[1:])
            raise
        finally:
            self.channel, self.assoc = kept
        counter.resync(min(value, 0xFFFFFFFF))
        self.log.info("%s: invocation counter continues from %d (%s)", self.name,
                      counter.next_value, what)
        return value

    def _shutdown_op(self, release: bool) -> Op:
        self._timeout = min(self.settings.response_timeout, 1.0)
        try:
            if self._wire and self.channel.connected:
                if release and self.assoc.state is AssociationState.ASSOCIATED:
                    yield from self._quietly(self.channel.send(self.assoc.release()))
                if self._wire:
                    yield from self._quietly(self.channel.disconnect())
        except Exception as exc:  # noqa: BLE001 - closing must never raise
            self.log.debug("%s: while closing: %s", self.name, exc)
        finally:
            self._timeout = self.settings.response_timeout
            self.assoc.reset()
            self.channel.reset()
            self.state = SessionState.CLOSED
            self._wire = False

    def _quietly(self, data: bytes) -> Op:
        try:
            self.channel.discard()
            self._write(data)
            yield from self._await(0)
        except DlmsError as exc:
            self.log.debug("%s: no clean answer while closing: %s", self.name, exc)
