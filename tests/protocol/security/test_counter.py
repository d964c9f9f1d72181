"""InvocationCounter: each value once, never backwards, unknown until re-synchronised."""

from __future__ import annotations

import pytest
from tb_dlms.protocol.security import CounterExhausted, CounterUnknown, InvocationCounter


def test_values_come_once_in_order() -> None:
    counter = InvocationCounter(5)
    assert [counter.take() for _ in range(3)] == [5, 6, 7]
    assert counter.next_value == 8


def test_unknown_until_resynchronised_from_the_frame_counter() -> None:
    counter = InvocationCounter(None)
    assert not counter.known
    with pytest.raises(CounterUnknown):
        counter.take()
    counter.resync(41)  # the meter accepted 41 last
    assert counter.take() == 42


def test_resync_never_goes_back_to_a_value_already_sent() -> None:
    counter = InvocationCounter(100)
    counter.take()
    counter.resync(10)  # a meter that lies (or was reset) does not make us reuse 11..100
    assert counter.take() == 101


def test_the_last_value_then_exhausted() -> None:
    counter = InvocationCounter(0xFFFFFFFF)
    assert counter.take() == 0xFFFFFFFF
    with pytest.raises(CounterExhausted, match="new key"):
        counter.take()


class Reserving(InvocationCounter):
    """Records what a persisting subclass would write."""

    def __init__(self, start: int, step: int) -> None:
        super().__init__(start)
        self.step, self.written = step, []

    def _reserve(self, value: int) -> int:
        self.written.append(value + self.step)
        return value + self.step


def test_reserve_is_asked_once_per_step_before_the_value_is_used() -> None:
    counter = Reserving(0, step=10)
    assert [counter.take() for _ in range(25)] == list(range(25))
    assert counter.written == [10, 20, 30]


@pytest.mark.parametrize("bad", [-1, 0x1_0000_0001])
def test_out_of_range_start_is_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        InvocationCounter(bad)
