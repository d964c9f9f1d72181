"""The object_list of an Association LN (class 15, attribute 2): which objects a meter has and
what this association may do with each (Blue Book, IEC 62056-6-2).

    object_list ::= array of structure {
        class_id long-unsigned, version unsigned, logical_name octet-string(6),
        access_rights structure {
            attribute_access array of structure {
                attribute_id integer, access_mode enum, access_selectors CHOICE {null, array of integer}},
            method_access array of structure {method_id integer, access_mode boolean | enum}}}

Association LN version 0 gives the method access_mode as a boolean, version 1 and 2 as an enum
(0 no access, 1 access, 2 authenticated access); version 3 turns both access modes into bit
flags (bit 0 read / access, bit 1 write). An object listed with empty rights says nothing
about access (``may_read``): the scan reads it to find out. The version comes from the
association's own entry in the list (0-0:40.0.0.255) unless the caller knows it. Meters are
lax about the types: an enum sent as an unsigned, a boolean as an integer, a missing selector
list are all taken; a shape that cannot be an entry is a ``DecodeError`` naming the entry and
the field.

Association SN (class 12, short-name referencing) lists objects differently (base names) and is
out of scope: the client speaks logical-name referencing only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

from .axdr import decode_data
from .errors import DecodeError
from .obis import Obis

__all__ = [
    "ASSOCIATION_CLASS",
    "CURRENT_ASSOCIATION",
    "AttributeAccess",
    "ListedObject",
    "MethodAccess",
    "decode_object_list",
    "parse_object_list",
]

ASSOCIATION_CLASS = 15
CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)  # the association the client is in


@dataclass(frozen=True)
class AttributeAccess:
    id: int
    mode: int  # as the meter sent it; its meaning depends on the association version
    selectors: Tuple[int, ...]
    readable: bool
    writable: bool


@dataclass(frozen=True)
class MethodAccess:
    id: int
    mode: int
    allowed: bool


@dataclass(frozen=True)
class ListedObject:
    class_id: int
    version: int
    obis: Obis
    attributes: Tuple[AttributeAccess, ...]
    methods: Tuple[MethodAccess, ...]

    def attribute(self, attribute_id: int) -> Optional[AttributeAccess]:
        for a in self.attributes:
            if a.id == attribute_id:
                return a
        return None

    def can_read(self, attribute_id: int) -> bool:
        """The list says this attribute is readable."""
        a = self.attribute(attribute_id)
        return a is not None and a.readable

    def may_read(self, attribute_id: int) -> bool:
        """Readable, or the meter listed no attribute rights for the object at all (Gurux's
        server, some meters): only a read tells then."""
        return not self.attributes or self.can_read(attribute_id)


# Versions 0..2 attribute access_mode enum: which values include reading / writing.
_READ_MODES = frozenset((1, 3, 4, 6))
_WRITE_MODES = frozenset((2, 3, 5, 6))


def decode_object_list(data: bytes, association_version: Optional[int] = None
                       ) -> Tuple[ListedObject, ...]:
    """The object_list from its A-XDR encoding (DecodeError on anything malformed)."""
    value, end = decode_data(data, 0, max_depth=8)
    if end != len(data):
        raise DecodeError(f"object_list: {len(data) - end} bytes after the array", end)
    return parse_object_list(value, association_version)


def parse_object_list(value: Any, association_version: Optional[int] = None
                      ) -> Tuple[ListedObject, ...]:
    """The object_list from its decoded value (arrays as lists, structures as tuples, as
    ``decode_data`` gives them and the session's ``Reading.raw`` holds them)."""
    if not isinstance(value, (list, tuple)):
        raise DecodeError(f"object_list: expected an array, got {_kind(value)}")
    headers = [_header(entry, i) for i, entry in enumerate(value)]
    version = association_version
    if version is None:
        version = next((h[1] for h in headers
                        if h[0] == ASSOCIATION_CLASS and h[2] == CURRENT_ASSOCIATION), 1)
    return tuple(
        ListedObject(class_id, obj_version, obis, *_rights(entry[3], i, version))
        for i, (entry, (class_id, obj_version, obis)) in enumerate(zip(value, headers))
    )


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):  # a boolean where an integer belongs: its truth value
        return int(value)
    if not isinstance(value, int):
        raise DecodeError(f"object_list {where}: expected an integer, got {_kind(value)} "
                          f"{value!r:.40}")
    return value


def _seq(value: Any, where: str, size: Optional[int] = None) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise DecodeError(f"object_list {where}: expected a structure or array, got "
                          f"{_kind(value)} {value!r:.40}")
    if size is not None and len(value) < size:
        raise DecodeError(f"object_list {where}: {len(value)} elements, expected {size}")
    return value


def _header(entry: Any, i: int) -> Tuple[int, int, Obis]:
    fields = _seq(entry, f"entry {i}", 4)
    class_id = _int(fields[0], f"entry {i} class_id")
    version = _int(fields[1], f"entry {i} version")
    name = fields[2]
    if not isinstance(name, (bytes, bytearray)) or len(name) != 6:
        raise DecodeError(f"object_list entry {i} (class {class_id}) logical_name: expected 6 "
                          f"octets, got {_kind(name)} {name!r:.40}")
    return class_id, version, Obis.from_bytes(bytes(name))


def _rights(rights: Any, i: int, version: int
            ) -> Tuple[Tuple[AttributeAccess, ...], Tuple[MethodAccess, ...]]:
    where = f"entry {i} access_rights"
    fields = _seq(rights, where, 1)
    attrs = tuple(_attribute(a, f"{where} attribute {j}", version)
                  for j, a in enumerate(_seq(fields[0], f"{where} attribute_access")))
    # Some meters leave method_access out for objects without methods.
    raw_methods = fields[1] if len(fields) > 1 and fields[1] is not None else ()
    methods = tuple(_method(m, f"{where} method {j}", version)
                    for j, m in enumerate(_seq(raw_methods, f"{where} method_access")))
    return attrs, methods


def _attribute(value: Any, where: str, version: int) -> AttributeAccess:
    fields = _seq(value, where, 2)
    attribute_id = _int(fields[0], f"{where} id")
    mode = _int(fields[1], f"{where} access_mode")
    selectors: Tuple[int, ...] = ()
    if len(fields) > 2 and fields[2] is not None:
        raw = fields[2] if isinstance(fields[2], (list, tuple)) else (fields[2],)
        selectors = tuple(_int(s, f"{where} selector") for s in raw)
    if version >= 3:  # bit flags: 1 read, 2 write (higher bits: the protection required)
        readable, writable = bool(mode & 1), bool(mode & 2)
    else:
        readable, writable = mode in _READ_MODES, mode in _WRITE_MODES
    return AttributeAccess(attribute_id, mode, selectors, readable, writable)


def _method(value: Any, where: str, version: int) -> MethodAccess:
    fields = _seq(value, where, 2)
    method_id = _int(fields[0], f"{where} id")
    mode = _int(fields[1], f"{where} access_mode")  # v0 boolean, v1+ enum / flags
    return MethodAccess(method_id, mode, bool(mode & 1) or (version in (1, 2) and mode == 2))
