"""The bounded caches of the express path: encoded frames and headers, per link or channel.

A steady poll needs 16 entries at most (8 send sequence numbers x a few request shapes); a meter
whose answers keep changing must not grow them, so a full cache is emptied and refilled.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["EXPRESS_CACHE_SIZE", "remember"]

K = TypeVar("K")
V = TypeVar("V")

EXPRESS_CACHE_SIZE = 256


def remember(cache: dict[K, V], key: K, value: V) -> V:
    """Store ``value`` under ``key``, forgetting every entry first when the cache is full."""
    if len(cache) >= EXPRESS_CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value
