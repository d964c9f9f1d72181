"""gc_tuning: start-up objects frozen once per process, and dlms.json's gcFreezeAfterMs."""

from __future__ import annotations

import gc
import logging
import weakref

import pytest
from tb_dlms.connector import gc_tuning
from tb_dlms.connector.config import load_config


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(gc_tuning, "_done", False)
    yield
    gc.unfreeze()  # give this test process its collector back


def test_freezes_what_is_alive_once_per_process(fresh, caplog):
    log = logging.getLogger("test.gc")
    alive = [[i] for i in range(10)]  # containers: tracked by the collector

    class Node:
        pass

    garbage = Node()
    garbage.me = garbage  # a reference cycle: collected first, never frozen
    dead = weakref.ref(garbage)
    del garbage
    with caplog.at_level(logging.INFO, logger="test.gc"):
        frozen = gc_tuning.freeze_startup_objects(log)
        again = gc_tuning.freeze_startup_objects(log)
    assert frozen is not None and frozen > 1000
    assert again is None  # a reloaded connector does not freeze again
    assert dead() is None
    tracked = {id(o) for o in gc.get_objects()}  # the generations a collection walks
    assert not any(id(a) in tracked for a in alive)
    [line] = [r.getMessage() for r in caplog.records if "frozen" in r.getMessage()]
    assert f"{frozen} start-up objects frozen" in line and "gcFreezeAfterMs: 0" in line


def _config(**top):
    meter = {"deviceName": "M1", "connection": {"type": "tcp", "host": "127.0.0.1", "port": 4059},
             "timeseries": [{"key": "v", "obis": "1-0:32.7.0"}]}
    return load_config({"meters": [meter], **top})


@pytest.mark.parametrize("value, seconds", [(None, 60.0), (0, 0.0), (5000, 5.0)])
def test_gc_freeze_after_ms_in_dlms_json(value, seconds):
    cfg = _config() if value is None else _config(gcFreezeAfterMs=value)
    assert cfg.gc_freeze_after_s == seconds and not cfg.errors


@pytest.mark.parametrize("bad", [-1, 10, "soon", True])
def test_a_bad_gc_freeze_after_ms_is_one_error_naming_the_field(bad):
    cfg = _config(gcFreezeAfterMs=bad)
    assert [e for e in cfg.errors if "gcFreezeAfterMs" in e], cfg.errors
    assert cfg.gc_freeze_after_s == 60.0 and [m.name for m in cfg.meters] == ["M1"]
