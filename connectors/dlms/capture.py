"""Explain a captured frame or APDU as JSON: what ``tb-dlms decode`` prints for a technician.

Accepts, in hex: one or more HDLC frames (7E ... 7E, flags may be shared), an IEC 62056-47 wrapper
PDU (00 01 ...), or a bare APDU. Segmented HDLC information is reassembled before the APDU is
decoded; several wrapper PDUs may follow each other. LLS passwords are masked unless asked for
(captures get pasted into tickets); keys (the dedicated key of an InitiateRequest) never show.
Ciphered APDUs (security suite 0/1) are deciphered with the keys of a ``CaptureState``: see
``capture_security``.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .capture_security import CaptureState
from .protocol.apdu import decode_apdu
from .protocol.axdr import Typed, to_json
from .protocol.errors import DecodeError
from .protocol.hdlc import FLAG, Frame, FrameKind, HdlcAddress, decode_frame, decode_parameters
from .protocol.hdlc.link import LLC_REQUEST, LLC_RESPONSE
from .protocol.obis import Obis
from .protocol.push import decode_data_notification
from .protocol.security import is_ciphered
from .protocol.wrapper import HEADER_SIZE, WRAPPER_VERSION

_SECRET_FIELDS = {"calling_authentication_value", "responding_authentication_value", "password"}
_KEY_FIELDS = {"dedicated_key"}  # masked even with --show-secrets
DATA_NOTIFICATION = 0x0F


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


def describe(data: bytes, *, show_secrets: bool = False,
             state: CaptureState | None = None) -> dict[str, Any]:
    """Decode ``data`` (HDLC frames, wrapper PDUs or an APDU) into a JSON-ready dict.

    ``state`` holds the keys and collects what the capture teaches (system titles); without
    it, ciphered APDUs show their security header only."""
    state = state if state is not None else CaptureState()
    if data[0] == FLAG:
        return _describe_hdlc(data, show_secrets, state)
    if len(data) >= HEADER_SIZE and int.from_bytes(data[:2], "big") == WRAPPER_VERSION:
        return _describe_wrapper(data, show_secrets, state)
    return {"apdu": describe_apdu(data, show_secrets, state)}


def describe_apdu(apdu: bytes, show_secrets: bool = False, state: CaptureState | None = None,
                  sender: str | None = None, wrapper_ports: tuple[int, int] | None = None,
                  ) -> dict[str, Any]:
    """One APDU; ``sender`` (client/server) as the frame around it says, when it does."""
    state = state if state is not None else CaptureState()

    def plain(data: bytes, who: str) -> dict[str, Any]:
        return describe_apdu(data, show_secrets, state, who or None)

    try:
        if apdu and apdu[0] == DATA_NOTIFICATION:
            return _data_notification(apdu)
        if is_ciphered(apdu):
            return state.describe(apdu, sender, plain)
        decoded = decode_apdu(apdu)
    except DecodeError as exc:
        raise CaptureError(f"APDU: {exc}") from exc
    state.learn(decoded, wrapper_ports)
    out = {"type": type(decoded).__name__}
    out.update(_render(decoded, show_secrets))
    try:
        info = state.user_information(decoded, plain)
    except DecodeError as exc:
        raise CaptureError(f"{type(decoded).__name__} user-information: {exc}") from exc
    if info is not None:
        out["user_information"] = info
    return out


def _data_notification(apdu: bytes) -> dict[str, Any]:
    note = decode_data_notification(apdu)
    return {"type": "DataNotification", "long_invoke_id": note.long_invoke_id,
            "high_priority": note.high_priority, "confirmed": note.confirmed,
            "date_time": note.date_time.isoformat() if note.date_time else None,
            "body": to_json(note.body)}


def _describe_wrapper(data: bytes, show_secrets: bool, state: CaptureState) -> dict[str, Any]:
    pdus: list[dict[str, Any]] = []
    pos = 0
    while pos < len(data):
        head = data[pos:pos + HEADER_SIZE]
        if len(head) < HEADER_SIZE or int.from_bytes(head[:2], "big") != WRAPPER_VERSION:
            raise CaptureError(f"wrapper PDU {len(pdus) + 1}: expected a wrapper header "
                               f"00 01 (at byte {pos})")
        source = int.from_bytes(head[2:4], "big")
        destination = int.from_bytes(head[4:6], "big")
        length = int.from_bytes(head[6:8], "big")
        body = data[pos + HEADER_SIZE:pos + HEADER_SIZE + length]
        if len(body) != length:
            raise CaptureError(
                f"wrapper: length field says {length} bytes of APDU but "
                f"{len(data) - pos - HEADER_SIZE} follow (at byte {pos + HEADER_SIZE})"
            )
        sender = state.side_of_ports(source, destination)
        pdus.append({
            "wrapper": {"version": WRAPPER_VERSION, "source_wport": source,
                        "destination_wport": destination, "length": length},
            "apdu": describe_apdu(body, show_secrets, state, sender, (source, destination)),
        })
        pos += HEADER_SIZE + length
    return pdus[0] if len(pdus) == 1 else {"pdus": pdus}


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


def _describe_hdlc(data: bytes, show_secrets: bool, state: CaptureState) -> dict[str, Any]:
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
                sender = {"request": "client", "response": "server"}.get(llc or "")
                entry["apdu"] = describe_apdu(apdu, show_secrets, state, sender)
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
    if field in _KEY_FIELDS and value is not None:
        return f"*** ({len(value)} bytes, key material: never printed)"
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
