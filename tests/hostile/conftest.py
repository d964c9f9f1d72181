"""Shared pieces of the hostile-meter suite: the meter fixture and the bounds every test states."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tb_dlms.testing.hostile import MODES, HostileMeter


@pytest.fixture(params=MODES)
def hostile(request: Any) -> Iterator[HostileMeter]:
    with HostileMeter(request.param) as meter:
        yield meter
