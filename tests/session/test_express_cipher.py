"""The express path of ciphered sessions (HLS-GMAC, security suite 0) against the simulator's
sans-IO meter, whose own replay guard refuses any counter of ours it has seen.

What must hold: at every protection level, over HDLC and the wrapper, express cycles send and
receive exactly the bytes of the full path (the same counters, the same frames) and read the same
readings, over the invoke-id and HDLC sequence wrap-arounds; every invocation counter is taken once
per request and sent once, in order; every answer the express path cannot take (tag or ciphertext
altered, the meter replaying a counter, another protection level, another type, another outer tag)
ends exactly as on the full path, and the meter's counter it carried is judged once, there.
Each case runs twice, express and ``express=False``, side by side; both challenges are fixed so
the two sessions' bytes can be compared whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from session_peer import REGISTERS, T0
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.hdlc import HdlcFramer
from tb_dlms.protocol.security import CipheredApdu, InvocationCounter, Policy, is_ciphered
from tb_dlms.session import Reading, SessionMachine, SessionSettings
from tb_dlms.simulator.connection import ServerSession as MeterConnection
from tb_dlms.simulator.connection import SimulatedMeter
from tb_dlms.simulator.model import (
    GREEN_BOOK_AUTH_KEY,
    GREEN_BOOK_BLOCK_KEY,
    MeterModel,
    MeterOptions,
)

LEVELS = pytest.mark.parametrize("level", ["auth", "enc", "auth-enc"])
WIRES = pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
Hook = Callable[[Any], Any]


def fixed_challenge() -> bytes:
    return bytes(range(16))  # both sessions of a pair send the same bytes


class Meter(MeterConnection):
    """The simulator's meter with hooks on its GET-with-list answers: ``mutate`` their results
    (from now on), answer the next one at another ``policy`` or ``spoil`` its ciphered APDU
    (before framing: the FCS is right)."""

    __slots__ = ("mutate", "policy", "spoil")

    def _get(self, assoc: Any, event: Any) -> bytes:
        get = self.meter.model.get
        results = [get(d.class_id, d.wire[2:8], d.attribute, a) for d, a in event.items]
        with_list = event.with_list and len(results) == len(REGISTERS)
        if with_list and self.mutate is not None:
            results = self.mutate(results)  # (kept: a firmware update)
        security = self.meter.security
        policy = security.policy
        if with_list and self.policy is not None:
            security.policy, self.policy = self.policy, None
        try:
            raw = assoc.respond_get(event.invoke_id, results)
        finally:
            security.policy = policy
        if with_list and self.spoil is not None:
            raw, self.spoil = self.spoil(raw), None
        return raw


class Rig:
    def __init__(self, level: str = "auth-enc", counter: InvocationCounter | None = None,
                 **settings: Any) -> None:
        self.now = T0
        options = MeterOptions(authentication="hls-gmac", security=level.replace("none", ""))
        self.model = MeterModel(0, clock=lambda: self.now, options=options)
        self.meter = Meter(SimulatedMeter(self.model, 16), settings.get("wrapper", False))
        self.meter.mutate = self.meter.policy = self.meter.spoil = None
        self.security = self.meter.meter.security  # the meter's: its guard judges our counters
        self.security.challenge = fixed_challenge
        self.machine = SessionMachine(SessionSettings(
            client=1, name="meter-7", authentication="hls-gmac", security=level,
            system_title=b"TBDLMS01", block_key=GREEN_BOOK_BLOCK_KEY, auth_key=GREEN_BOOK_AUTH_KEY,
            invocation_counter=1, counter=counter, **settings), wall_clock=lambda: self.now)
        self.ours = self.machine.assoc.settings.security  # ours: our counter, the meter's guard
        self.ours.challenge = fixed_challenge
        self.sent: list[bytes] = []
        self.received: list[bytes] = []
        self.machine.connect(0.0)
        self.pump()

    def pump(self) -> Any:
        m = self.machine
        while m.busy:
            out = m.data_to_send()
            answer = self.meter.receive(out)
            self.sent.append(out)
            self.received.append(answer)
            m.receive_data(answer, 0.0)
        return m.result()

    def cycle(self) -> Any:
        self.now += 15.0  # every register moves
        self.machine.read(REGISTERS, 0.0)
        try:
            return self.pump()
        except Exception as exc:  # noqa: BLE001 - compared with the twin's outcome
            return f"{type(exc).__name__}: {exc}"

    def expected(self) -> list[Any]:
        return [self.model.expected_value(r.obis) for r in REGISTERS]

    def apdus_sent(self) -> list[bytes]:
        """Every APDU we sent, in order (frames cut out of the HDLC stream or the wrapper)."""
        if self.machine.settings.wrapper:
            return [chunk[8:] for chunk in self.sent if chunk]
        framer = HdlcFramer()
        framer.feed(b"".join(self.sent))
        apdus, parts = [], b""
        while (frame := framer.next_frame()) is not None:
            parts += frame.info
            if parts and not frame.segmented:
                apdus.append(parts[3:])  # after the LLC
                parts = b""
        return apdus


def values(readings: Any) -> list[Any]:
    assert isinstance(readings, list) and all(isinstance(r, Reading) for r in readings), readings
    return [r.value for r in readings]


def express_cache_of(rig: Rig) -> dict[Any, Any]:
    channel = rig.machine.channel
    return channel._express_tx if rig.machine.settings.wrapper else channel.link._express_tx


def same_as_the_full_path(fast: Rig, full: Rig) -> None:
    for name in ("requests", "round_trips", "bytes_sent", "bytes_received", "retransmissions"):
        assert getattr(fast.machine, name) == getattr(full.machine, name), name
    assert fast.sent == full.sent and fast.received == full.received  # byte for byte
    assert full.machine.express_cycles == 0


@WIRES
@LEVELS
def test_ciphered_express_cycles_send_and_read_what_the_full_path_does(level, wrapper):
    fast, full = Rig(level, wrapper=wrapper), Rig(level, wrapper=wrapper, express=False)
    for n in range(40):  # past the invoke-id (16) and HDLC sequence (8) wrap-arounds
        a, b = fast.cycle(), full.cycle()
        assert values(a) == fast.expected(), n
        assert a == b  # raw, scaler, unit and read_at too
    # Cycle 1 reads scalers, cycle 2 teaches the answer's shape: 38 express cycles.
    assert (fast.machine.express_cycles, fast.machine.express_fallbacks) == (38, 0)
    same_as_the_full_path(fast, full)
    assert fast.security.replays == fast.security.refused == 0
    assert express_cache_of(fast) == {}  # a ciphered frame is never kept


class Recording(InvocationCounter):
    def __init__(self, start: int) -> None:
        super().__init__(start)
        self.taken: list[int] = []

    def take(self) -> int:
        value = super().take()
        self.taken.append(value)
        return value


@WIRES
def test_every_counter_is_taken_once_per_request_and_sent_once_in_order(wrapper):
    counter = Recording(1)
    rig = Rig(counter=counter, wrapper=wrapper)
    connect_takes = len(counter.taken)  # AARQ, f(StoC), the action request carrying it
    connect_apdus = len(rig.apdus_sent())
    for _ in range(20):
        taken, sent = len(counter.taken), len(rig.apdus_sent())
        assert values(rig.cycle()) == rig.expected()
        assert len(counter.taken) - taken == len(rig.apdus_sent()) - sent  # one per request
    assert rig.machine.express_cycles == 18
    cycles = rig.apdus_sent()[connect_apdus:]
    assert all(is_ciphered(apdu) for apdu in cycles)
    ics = [CipheredApdu.decode(apdu).header.invocation_counter for apdu in cycles]
    assert ics == counter.taken[connect_takes:]  # each value taken is sent, once, in order
    assert ics == sorted(set(ics))  # strictly increasing
    assert rig.security.guard.last == counter.taken[-1] and rig.security.replays == 0
    # And the meter's counters: every answer's accepted, the express ones too, up to its last.
    assert rig.ours.guard.last == rig.security.counter.next_value - 1


def test_a_request_repeated_after_a_lost_answer_is_the_same_frame_not_a_new_counter():
    counter = Recording(1)
    rig = Rig(counter=counter, response_timeout=1.0)
    for _ in range(3):
        rig.cycle()
    m = rig.machine
    taken = len(counter.taken)
    rig.now += 15.0
    m.read(REGISTERS, 10.0)
    request = m.data_to_send()
    rig.meter.receive(request)  # answered, and the answer lost on the line
    m.check_timeout(11.0)
    assert m.data_to_send() == request  # the same I frame: the same counter, not a new one
    m.receive_data(rig.meter.receive(request), 11.1)  # the meter repeats its answer
    assert values(m.result()) == rig.expected()
    assert len(counter.taken) == taken + 1 and rig.security.replays == 0


def run_pair(spoil: Callable[[Rig], None], level: str = "auth-enc", wrapper: bool = False,
             cycles: int = 7) -> tuple[Rig, Rig]:
    """The same cycles on an express session and a full-path one; ``spoil`` arms the meter of
    each before cycle 4 (an express one). Every cycle reads the right values on both."""
    fast, full = Rig(level, wrapper=wrapper), Rig(level, wrapper=wrapper, express=False)
    for n in range(cycles):
        if n == 3:
            assert fast.machine.express_cycles == 1
            spoil(fast)
            spoil(full)
        a, b = fast.cycle(), full.cycle()
        assert values(a) == fast.expected(), n
        assert a == b, n
    same_as_the_full_path(fast, full)
    return fast, full


def flip(at: int) -> Callable[[bytes], bytes]:
    def spoil(raw: bytes) -> bytes:
        i = at % len(raw)
        return raw[:i] + bytes((raw[i] ^ 0x01,)) + raw[i + 1:]
    return spoil


def arm(**hooks: Any) -> Callable[[Rig], None]:
    def spoil(rig: Rig) -> None:
        for name, hook in hooks.items():
            setattr(rig.meter, name, hook)
    return spoil


def refusals(caplog: Any) -> list[str]:
    """Why the GET-with-list answers were refused (the full path then reads one by one)."""
    return [r.getMessage() for r in caplog.records if "GET-with-list of 9" in r.getMessage()]


@WIRES
@pytest.mark.parametrize("where", [-1, -20], ids=["tag", "ciphertext"])
@pytest.mark.parametrize("level", ["auth", "auth-enc"])
def test_an_altered_answer_goes_to_the_full_path_which_refuses_it(level, where, wrapper, caplog):
    fast, _ = run_pair(arm(spoil=flip(where)), level, wrapper)
    assert fast.machine.express_fallbacks == 1
    reasons = refusals(caplog)
    assert len(reasons) == 2 and all("authentication tag mismatch" in r for r in reasons)
    # A security failure is no GET-with-list quirk: single GETs for that cycle only.
    assert all("for this cycle" in r for r in reasons) and fast.machine.with_list.usable


@WIRES
def test_an_altered_outer_tag_is_not_taken_although_the_gcm_tag_does_not_cover_it(wrapper,
                                                                                  caplog):
    # 0xCC (glo-get-response) -> 0xCD (glo-set-response): the tag byte is outside the AAD.
    fast, _ = run_pair(arm(spoil=flip(0)), "auth-enc", wrapper)
    assert fast.machine.express_fallbacks == 1
    reasons = refusals(caplog)
    assert len(reasons) == 2 and all("does not hold the APDU it names" in r for r in reasons)


@WIRES
def test_a_counter_the_meter_replays_is_refused_by_the_full_path(wrapper, caplog):
    def replay(rig: Rig) -> None:  # the meter's next answer reuses its last counter
        rig.security.counter = InvocationCounter(rig.security.counter.next_value - 1)

    fast, full = run_pair(replay, "auth-enc", wrapper)
    assert fast.machine.express_fallbacks == 1
    reasons = refusals(caplog)
    assert len(reasons) == 2 and all("not above the last accepted" in r for r in reasons)
    assert fast.ours.guard.last == full.ours.guard.last == fast.security.counter.next_value - 1


@WIRES
def test_a_lower_protection_level_is_refused_as_on_the_full_path(wrapper, caplog):
    fast, _ = run_pair(arm(policy=Policy.AUTHENTICATION), "auth-enc", wrapper)
    assert fast.machine.express_fallbacks == 1
    reasons = refusals(caplog)
    assert len(reasons) == 2 and all("policy requires auth-enc" in r for r in reasons)


@WIRES
def test_a_higher_protection_level_is_read_and_the_usual_one_learned_again(wrapper, caplog):
    fast, _ = run_pair(arm(policy=Policy.AUTHENTICATED_ENCRYPTION), "auth", wrapper)
    assert refusals(caplog) == []  # auth-enc covers auth: taken by the full path
    # The auth-enc answer, then the auth one again: each costs a full-path cycle, then express.
    assert (fast.machine.express_cycles, fast.machine.express_fallbacks) == (3, 2)


SAME_SIZE = {DataType.LONG_UNSIGNED: DataType.LONG, DataType.DOUBLE_LONG_UNSIGNED:
             DataType.DOUBLE_LONG, DataType.LONG: DataType.LONG_UNSIGNED}


def same_size_other_type(results: list[Any]) -> list[Any]:
    first = results[0]
    return [Typed(SAME_SIZE[first.type], first.value), *results[1:]]


def wider_type(results: list[Any]) -> list[Any]:
    return [Typed(DataType.LONG64_UNSIGNED, results[0].value), *results[1:]]


@WIRES
@pytest.mark.parametrize("change", [same_size_other_type, wider_type],
                         ids=["same-length", "longer"])
def test_a_type_change_is_read_by_the_full_path_and_learned_again(change, wrapper, caplog):
    # Same length: the answer deciphers, its counter is fresh, only the plain shape differs;
    # the full path must then take that same counter, not refuse it as a replay.
    fast, full = run_pair(arm(mutate=change), "auth-enc", wrapper)
    assert refusals(caplog) == []
    assert (fast.machine.express_cycles, fast.machine.express_fallbacks) == (4, 1)
    assert fast.ours.guard.last == full.ours.guard.last == fast.security.counter.next_value - 1


@WIRES
def test_a_counter_the_meter_refuses_ends_the_session_as_on_the_full_path(wrapper):
    fast, full = Rig(wrapper=wrapper), Rig(wrapper=wrapper, express=False)
    for _ in range(3):
        fast.cycle(), full.cycle()
    for rig in (fast, full):
        rig.security.guard.last = 10**6  # another client with our title went far ahead
    a, b = fast.cycle(), full.cycle()
    assert a == b and a.startswith("InvocationCounterRejected: meter-7: the meter refused")
    assert fast.machine.express_fallbacks == 1
    same_as_the_full_path(fast, full)


def test_hls_without_ciphering_takes_the_plain_express_path():
    fast, full = Rig("none"), Rig("none", express=False)
    for n in range(20):
        a, b = fast.cycle(), full.cycle()
        assert values(a) == fast.expected() and a == b, n
    assert (fast.machine.express_cycles, fast.machine.express_fallbacks) == (18, 0)
    assert not is_ciphered(fast.apdus_sent()[-1])
    same_as_the_full_path(fast, full)
