"""Reading a profile by date range on demand: the ``read_profile`` RPC and ``tb-dlms read
--from/--to``. Rows come scaled, with ISO-8601 capture times (UTC) and the column keys."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from ..protocol.errors import DlmsError
from ..protocol.obis import Obis
from .profile_config import ProfileConfig
from .profile_reader import ProfileReader

__all__ = ["MAX_READS", "MAX_ROWS", "ProfileRequestError", "parse_time", "profile_job", "read_profile",
           "rows_reply"]

MAX_ROWS = 10_000  # one answer; longer spans: several requests
MAX_READS = 200  # GETs one request may take (an empty span still costs one each)


class ProfileRequestError(ValueError):
    """A bad from/to or a span with too many rows (the message says which)."""


def parse_time(text: Any, what: str, zone: _dt.tzinfo) -> _dt.datetime:
    """ISO-8601 (``Z`` allowed); without an offset it is the meter's local time."""
    if not isinstance(text, str) or not text.strip():
        raise ProfileRequestError(f"{what}: an ISO-8601 date-time is required")
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        raise ProfileRequestError(f"{what}: {text!r} is not an ISO-8601 date-time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def read_profile(session: Any, reader: ProfileReader, start: _dt.datetime,
                 end: _dt.datetime) -> dict[str, Any]:
    """Every row with ``start <= time <= end``, read in the reader's chunks."""
    if end < start:
        raise ProfileRequestError("to is before from")
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    since = start_ms - 1
    for _ in range(MAX_READS):
        chunk = reader.read_chunk(session, since, end_ms)
        rows += chunk.rows
        problems += chunk.problems
        if len(rows) > MAX_ROWS:
            raise ProfileRequestError(f"more than {MAX_ROWS} rows: ask for a shorter span")
        if chunk.complete:
            return rows_reply(reader, rows, problems)
        since = max(chunk.read_to_ms, rows[-1][0] if rows else since)
    raise ProfileRequestError(f"more than {MAX_READS} requests for this span: ask for a "
                              "shorter one")


def rows_reply(reader: ProfileReader, rows: list[tuple[int, dict[str, Any]]],
               problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "profile": str(reader.profile.obis),
        "columns": [k for k in reader.keys if k is not None],
        "units": dict(reader.units),
        "rows": [{"time": _iso(ts), **values} for ts, values in rows],
    }
    if problems:
        out["problems"] = problems
    return out


def _iso(ms: int) -> str:
    moment = _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def profile_job(meter: Any, params: Any) -> Any:
    """The ``read_profile`` RPC of ``meter`` (a MeterConfig): params {obis, from, to?}."""
    if not isinstance(params, Mapping):
        raise ProfileRequestError("params must be an object: {obis, from, to?}")
    try:
        obis = Obis.parse(str(params.get("obis", "")))
    except (DlmsError, ValueError) as exc:
        raise ProfileRequestError(f"obis: {exc}") from None
    configured = next((p for p in meter.profiles if p.obis == obis), None)
    profile = configured or ProfileConfig(obis, backfill_days=0, max_rows_per_read=500)
    session_settings = meter.spec.session
    reader = ProfileReader(meter.name, profile, meter.time_zone, session_settings.deviation_sign)
    zone = reader.zone
    start = parse_time(params.get("from"), "from", zone)
    end = (parse_time(params["to"], "to", zone) if params.get("to")
           else _dt.datetime.now(_dt.timezone.utc))

    def job(session: Any) -> dict[str, Any]:
        try:
            return {"success": True, **read_profile(session, reader, start, end)}
        except ProfileRequestError as exc:  # an answer, not a failure of the meter
            return {"success": False, "error": str(exc)}

    return job
