"""Explain a captured frame or APDU as JSON: what ``tb-dlms decode`` prints for a technician.

Accepts, in hex: one or more HDLC frames (7E ... 7E, flags may be shared), an IEC 62056-47 wrapper
PDU (00 01 ...), or a bare APDU. Segmented HDLC information is reassembled before the APDU is
decoded. LLS passwords are masked unless asked for: captures get pasted into tickets.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .protocol.apdu import decode_apdu
from .protocol.axdr import Typed, to_json
from .protocol.errors import DecodeError
from .protocol.hdlc import FLAG, Frame, FrameKind, HdlcAddress, decode_frame, decode_parameters
from .protocol.hdlc.link import LLC_REQUEST, LLC_RESPONSE
from .protocol.obis import Obis
from .protocol.wrapper import HEADER_SIZE, WRAPPER_VERSION

_SECRET_FIELDS = {"calling_authentication_value", "responding_authentication_value", "password"}


class CaptureError(DecodeError):
    """The capture cannot be read; the message says which part and where."""


def parse_hex(words: list[str]) -> bytes:
    text = "".join(words).replace(" ", "").replace(":", "").replace("-", "")
    if text.lower().startswith("0x"):
        text = text[2:]
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        raise CaptureError(f"not hexadecimal: {exc}") from exc
    if not data:
        raise CaptureError("nothing to decode")
    return data


def describe(data: bytes, *, show_secrets: bool = False) -> dict[str, Any]:
    """Decode ``data`` (HDLC frames, a wrapper PDU or an APDU) into a JSON-ready dict."""
    if data[0] == FLAG:
        return _describe_hdlc(data, show_secrets)
    if len(data) >= HEADER_SIZE and int.from_bytes(data[:2], "big") == WRAPPER_VERSION:
        return _describe_wrapper(data, show_secrets)
    return {"apdu": describe_apdu(data, show_secrets)}


def describe_apdu(apdu: bytes, show_secrets: bool = False) -> dict[str, Any]:
    try:
        decoded = decode_apdu(apdu)
    except DecodeError as exc:
        raise CaptureError(f"APDU: {exc}") from exc
    out = {"type": type(decoded).__name__}
    out.update(_render(decoded, show_secrets))
    return out


def _describe_wrapper(data: bytes, show_secrets: bool) -> dict[str, Any]:
    source = int.from_bytes(data[2:4], "big")
    destination = int.from_bytes(data[4:6], "big")
    length = int.from_bytes(data[6:8], "big")
    body = data[HEADER_SIZE:]
    if len(body) != length:
        raise CaptureError(
            f"wrapper: length field says {length} bytes of APDU but {len(body)} follow"
            f" (at byte {HEADER_SIZE})"
        )
    return {
        "wrapper": {"version": WRAPPER_VERSION, "source_wport": source,
                    "destination_wport": destination, "length": length},
        "apdu": describe_apdu(body, show_secrets),
    }


def split_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Cut a capture into frames by their length fields; consecutive frames may share a flag."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if data[pos] != FLAG:
            raise CaptureError(f"HDLC frame {len(frames) + 1}: expected the 0x7E flag (at byte {pos})")
        if pos + 3 > len(data):
            raise CaptureError(f"HDLC frame {len(frames) + 1}: truncated header (at byte {pos})")
        if data[pos + 1] == FLAG:  # two flags in a row: an empty gap between frames
            pos += 1
            continue
        length = int.from_bytes(data[pos + 1 : pos + 3], "big") & 0x7FF
        end = pos + length + 2
        if end > len(data):
            raise CaptureError(
                f"HDLC frame {len(frames) + 1}: truncated, length field says {length} bytes"
                f" but {len(data) - pos - 2} follow (at byte {pos + 1})"
            )
        frames.append((pos, data[pos:end]))
        # The closing flag of this frame may be the opening flag of the next one.
        pos = end - 1 if end < len(data) and data[end] != FLAG else end
        if pos == end - 1 and end == len(data):
            break
    return frames


def _describe_hdlc(data: bytes, show_secrets: bool) -> dict[str, Any]:
    described, pending = [], b""
    for number, (start, raw) in enumerate(split_frames(data), 1):
        try:
            frame = decode_frame(raw)
        except DecodeError as exc:
            where = f" (at byte {start + exc.offset})" if exc.offset is not None else ""
            message = str(exc).split(" (at byte")[0]
            raise CaptureError(f"HDLC frame {number}: {message}{where}") from exc
        entry = _describe_frame(frame)
        if frame.kind in (FrameKind.I, FrameKind.UI) and frame.info:
            pending += frame.info
            if frame.segmented:
                entry["note"] = "segment: APDU continues in the next frame"
            else:
                llc, apdu = _strip_llc(pending)
                pending = b""
                if llc:
                    entry["llc"] = llc
                entry["apdu"] = describe_apdu(apdu, show_secrets)
        elif frame.kind in (FrameKind.SNRM, FrameKind.UA) and frame.info:
            try:
                params = decode_parameters(frame.info)
            except DecodeError as exc:
                raise CaptureError(f"HDLC frame {number}: parameters: {exc}") from exc
            entry["parameters"] = dataclasses.asdict(params)
        described.append(entry)
    if pending:
        described[-1]["note"] = "capture ends inside a segmented APDU"
    return {"hdlc": described[0]} if len(described) == 1 else {"frames": described}


def _describe_frame(frame: Frame) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": frame.kind.name,
        "destination": _address(frame.destination),
        "source": _address(frame.source),
        "poll_final": frame.poll_final,
    }
    if frame.kind is FrameKind.I:
        out.update(ns=frame.ns, nr=frame.nr)
    elif frame.kind in (FrameKind.RR, FrameKind.RNR):
        out["nr"] = frame.nr
    out["segmented"] = frame.segmented
    out["info_length"] = len(frame.info)
    return out


def _address(address: HdlcAddress) -> dict[str, Any]:
    return {"logical": address.logical, "physical": address.physical, "size": address.size}


def _strip_llc(info: bytes) -> tuple[str | None, bytes]:
    if info[:3] == LLC_REQUEST:
        return "request", info[3:]
    if info[:3] == LLC_RESPONSE:
        return "response", info[3:]
    return None, info


def _render(value: Any, show_secrets: bool, field: str = "") -> Any:
    """Generic JSON rendering of APDU objects: dataclasses by field, enums by name."""
    if field in _SECRET_FIELDS and value is not None and not show_secrets:
        return f"*** ({len(value)} bytes, --show-secrets to print)"
    if isinstance(value, enum.Flag):  # combined flags have no single name on Python 3.9
        members = [m for m in type(value) if m.value and value & m == m]
        return [m.name.lower().replace("_", "-") for m in members]  # type: ignore[union-attr]
    if isinstance(value, enum.Enum):
        return value.name.lower().replace("_", "-")
    if isinstance(value, Obis):
        return str(value)
    if isinstance(value, Typed):
        return to_json(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            if f.name.startswith("_") or not f.repr:
                continue
            out[f.name] = _render(getattr(value, f.name), show_secrets, f.name)
        return out
    if isinstance(value, (list, tuple)):
        return [_render(v, show_secrets) for v in value]
    return to_json(value)
