"""The cipher step of the express path (``session/express.py``), sans-IO.

A steady cycle's ciphered answer differs from the last one by its invocation counter and its
protected octets only: its service-specific tag, length and security control byte (SC) stay those
of the answer the full path opened last under the association's policy. ``ExpressCipher`` compares
them with a template from this layer's encoder (``ciphered_head`` and the SC), checks that the
counter is above the last one accepted from the meter (without taking it), and opens the content
with the key (the tag verified in constant time, as on the full path). Nothing moves until the
caller, having checked the plaintext too, calls ``accept``: an answer handed to the full path
instead is judged there, once, and cannot be refused as a replay of itself.

Any other SC (another protection level, the broadcast key), length, tag, a counter not above the
last or a tag that does not verify: ``open`` returns None and the full path decides, with the
policy check and the error it gives.
"""

from __future__ import annotations

from .apdu import ciphered_head
from .control import AuthenticationTagMismatch, CounterGuard, SecurityControl
from .gcm import GcmKey, sealed_length

__all__ = ["ExpressCipher"]


class ExpressCipher:
    """Opens answers protected like a learned one: ``tag`` (service-specific), ``control``,
    ``plain_length`` octets of plain APDU, sent by ``peer_title`` under ``key``; ``guard`` is the
    association's replay guard of the peer's counters. ``length``: the ciphered APDU's octets."""

    __slots__ = ("_guard", "_head", "_ic", "_key", "_policy", "_sc", "_title", "length")

    def __init__(self, key: GcmKey, guard: CounterGuard, peer_title: bytes, tag: int,
                 control: SecurityControl, plain_length: int) -> None:
        content = sealed_length(plain_length, control.policy)
        head = ciphered_head(tag, content)
        self._sc = bytes((control.byte,))
        self._head = head + self._sc  # what every answer of this shape starts with
        self._ic = len(self._head)  # the invocation counter follows the SC
        self.length = len(head) + content
        self._key = key
        self._guard = guard
        self._policy = control.policy
        self._title = bytes(peer_title)

    def open(self, data: bytes, at: int) -> tuple[bytes, int] | None:
        """The plain APDU and its invocation counter when ``data[at:at + length]`` is an answer
        of the learned shape, with a counter above the last accepted and a tag that verifies;
        else None. Nothing changes either way (see ``accept``)."""
        if not data.startswith(self._head, at):
            return None
        ic = at + self._ic
        raw = data[ic:ic + 4]
        counter = int.from_bytes(raw, "big")
        if not self._guard.is_fresh(counter):
            return None  # a replay: the full path refuses it with its error
        body = data[ic + 4:at + self.length]
        try:
            plain = self._key.unseal(self._policy, self._title + raw, self._sc, body)
        except AuthenticationTagMismatch:
            return None
        return plain, counter

    def accept(self, counter: int) -> None:
        """The answer ``open`` gave ``counter`` for was taken: the meter's counter moves on."""
        self._guard.accept_counter(counter)
