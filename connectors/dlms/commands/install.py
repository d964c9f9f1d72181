"""``tb-dlms install``: put the connector where the ThingsBoard IoT Gateway looks for it.

The gateway (3.8.x ``TBModuleLoader``) finds a custom connector by the ``type`` of its entry in
``tb_gateway.json``: it searches ``/var/lib/thingsboard_gateway/extensions/<type>/`` (if that
folder exists), then ``<gateway package>/extensions/<type>/``, and executes every top-level
``.py`` file there by path, without a package. So this command writes two thin files there, each
one absolute import from the installed ``tb_dlms`` package (templates: ``tb_dlms.extension``):

    <EXTENSIONS_DIR>/<type>/dlms_connector.py   -> DlmsConnector
    <EXTENSIONS_DIR>/<type>/dlms_converter.py   -> DlmsUplinkConverter

and, with ``--config-dir``, the example ``dlms.json`` next to ``tb_gateway.json``.

``--type`` is ``dlms`` by default. The ThingsBoard UI's connector page creates custom connectors as
``"type": "custom"``: install with ``--type custom`` when the connector is managed from the UI.
A built-in type name (``modbus``, ``mqtt`` ...) is refused: the gateway would load its own class
for it whatever ``class`` says.

Idempotent: a file that already has the right content is left alone; a file that we wrote in an
older version is replaced; any other existing file is kept unless ``--force``. Running it again
over the user's edited ``dlms.json`` keeps it and succeeds; only a foreign loader file in our place
(which the gateway would execute instead of ours) makes it exit 1.

EXTENSIONS_DIR must be a folder the gateway searches: an existing folder named ``extensions``, or
the Debian one (created if missing: the gateway looks for exactly that path). A mistyped path is an
error, never a new folder nobody loads from.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..protocol.errors import ConfigError

# Where the gateway looks, per installation layout (see the module docstring).
DEB_EXTENSIONS_DIR = Path("/var/lib/thingsboard_gateway/extensions")
# In the thingsboard/tb-gateway image /thingsboard_gateway/extensions is a VOLUME: a bind mount
# hides what the image put there, and the classic builder drops RUN changes to a declared volume.
# The Debian folder is searched first and is no volume, so the docker layout installs there.
DOCKER_EXTENSIONS_DIR = DEB_EXTENSIONS_DIR

# Built-in types of thingsboard-gateway 3.8.5 (gateway/constants.py DEFAULT_CONNECTORS, plus the
# grpc and serial folders): for these the gateway ignores "class" and loads its own connector.
_BUILTIN_TYPES = frozenset(
    [
        "mqtt",
        "modbus",
        "opcua",
        "ble",
        "request",
        "can",
        "bacnet",
        "odbc",
        "rest",
        "snmp",
        "ftp",
        "socket",
        "xmpp",
        "ocpp",
        "knx",
        "s7",
        "serial",
        "grpc",
    ]
)
_TYPE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")

CONNECTOR_CLASS = "DlmsConnector"
CONFIG_FILE = "dlms.json"


@dataclass(frozen=True)
class Written:
    """One file handled by :func:`install`: ``status`` is "written", "unchanged" or "kept"."""

    path: Path
    status: str
    ours: bool = True  # a loader file (False: the user's dlms.json, which is theirs to keep)


def connector_entry(connector_type: str = "dlms", name: str = "DLMS Meters") -> dict[str, str]:
    """The ``connectors`` entry of ``tb_gateway.json`` that loads what :func:`install` wrote."""
    return {
        "type": connector_type,
        "name": name,
        "class": CONNECTOR_CLASS,
        "configuration": CONFIG_FILE,
    }


def gateway_package_dir() -> Path | None:
    """The installed ``thingsboard_gateway`` package folder, found without importing it."""
    spec = importlib.util.find_spec("thingsboard_gateway")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_extensions_dir(layout: str) -> Path:
    if layout == "docker":
        return DOCKER_EXTENSIONS_DIR
    package = gateway_package_dir()
    if package is None:
        raise ConfigError(
            "thingsboard_gateway is not installed in this Python: give EXTENSIONS_DIR"
        )
    return package / "extensions"


def check_type(connector_type: str) -> None:
    if not _TYPE_RE.match(connector_type):
        raise ConfigError(f"--type {connector_type!r}: use letters, digits, '_', '-', '.'")
    if connector_type.lower() in _BUILTIN_TYPES:
        raise ConfigError(
            f"--type {connector_type!r} is a built-in gateway connector type: the gateway would "
            "load its own class for it; use 'dlms' (default) or 'custom'"
        )


def loader_sources() -> dict[str, str]:
    """File name -> text of the thin loader files (``tb_dlms.extension`` templates)."""
    from ..extension import LOADER_FILES

    package = resources.files("tb_dlms.extension")
    return {name: package.joinpath(name).read_text(encoding="utf-8") for name in LOADER_FILES}


def example_config() -> str:
    """Text of the example ``dlms.json`` shipped as package data of ``tb_dlms.config``."""
    try:
        return resources.files("tb_dlms.config").joinpath(CONFIG_FILE).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"the example {CONFIG_FILE} is missing from tb_dlms.config") from exc


def check_extensions_dir(folder: Path) -> None:
    """ConfigError unless ``folder`` is one the gateway's loader searches (module docstring)."""
    if folder.absolute() == DEB_EXTENSIONS_DIR:
        return
    if folder.name != "extensions":
        raise ConfigError(
            f"{folder} is not a gateway extensions folder: the gateway loads connectors from "
            f"<gateway>/extensions/<type>/ or {DEB_EXTENSIONS_DIR}/<type>/ only"
        )
    if not folder.is_dir():
        raise ConfigError(
            f"{folder} does not exist: give the gateway's extensions folder (or omit it for "
            "the installed gateway's own)"
        )


def _put(path: Path, text: str, *, ours: bool, force: bool) -> Written:
    """Write ``text`` to ``path`` unless it is there already or belongs to someone else."""
    from ..extension import MARKER

    if path.exists():
        current = path.read_text(encoding="utf-8", errors="replace")
        if current == text:
            return Written(path, "unchanged", ours)
        # Our own older loader file is replaced; anything else needs --force.
        if not force and not (ours and current.startswith(MARKER)):
            return Written(path, "kept", ours)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a gateway scanning the folder never sees half a file
    return Written(path, "written", ours)


def install(
    extensions_dir: str | os.PathLike[str],
    connector_type: str = "dlms",
    config_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> list[Written]:
    """Write the loader files into ``extensions_dir/connector_type`` (and ``dlms.json`` into
    ``config_dir``); return what happened to each file. Raises ConfigError on a bad type, a
    folder that is not a gateway extensions folder, or a config folder that does not exist."""
    check_type(connector_type)
    check_extensions_dir(Path(extensions_dir))
    if config_dir is not None and not Path(config_dir).is_dir():
        raise ConfigError(f"--config-dir {config_dir} does not exist: give the folder of "
                          "tb_gateway.json")
    target = Path(extensions_dir) / connector_type
    done = [
        _put(target / name, text, ours=True, force=force) for name, text in loader_sources().items()
    ]
    if config_dir is not None:
        done.append(_put(Path(config_dir) / CONFIG_FILE, example_config(), ours=False, force=force))
    return done


def check_loader(folder: str | os.PathLike[str], class_name: str) -> type:
    """Load ``class_name`` from ``folder`` the way the gateway does (each top-level .py executed
    by path, no package) and return the class; ConfigError if no file provides it."""
    from importlib.util import module_from_spec, spec_from_file_location

    problems = []
    for file in sorted(Path(folder).iterdir()):
        if file.name.startswith("__") or file.suffix != ".py":
            continue
        spec = spec_from_file_location(class_name, file)
        if spec is None or spec.loader is None:
            continue
        module = module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:
            problems.append(f"{file.name}: {exc}")
            continue
        found = getattr(module, class_name, None)
        if isinstance(found, type):
            return found
    detail = "; ".join(problems) or "no file defines it"
    raise ConfigError(f"{class_name} cannot be loaded from {folder}: {detail}")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "install",
        help="write the connector's loader files into a gateway extensions folder",
        description="Write extensions/<type>/dlms_connector.py and dlms_converter.py (one "
        "absolute import each from the installed tb_dlms package) where the gateway's loader "
        "finds them. Exit 0 done (an existing dlms.json is kept), 1 a foreign loader file was "
        "kept, 2 bad arguments or not an extensions folder, 3 --check failed.",
    )
    p.add_argument(
        "extensions_dir",
        nargs="?",
        metavar="EXTENSIONS_DIR",
        help="extensions folder (default: the installed gateway's, or with --layout docker "
        f"{DOCKER_EXTENSIONS_DIR})",
    )
    p.add_argument(
        "--type",
        dest="connector_type",
        default="dlms",
        help="connector type = folder name (default dlms; the ThingsBoard UI uses custom)",
    )
    p.add_argument(
        "--layout",
        choices=("pip", "docker"),
        default="pip",
        help="pip: gateway installed with pip (default); docker: the thingsboard/tb-gateway image",
    )
    p.add_argument("--config-dir", help="also copy the example dlms.json into this folder")
    p.add_argument("--force", action="store_true", help="overwrite files we did not write")
    p.add_argument(
        "--check", action="store_true", help="then load the classes back the way the gateway does"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        folder = (
            Path(args.extensions_dir)
            if args.extensions_dir
            else default_extensions_dir(args.layout)
        )
        done = install(folder, args.connector_type, args.config_dir, args.force)
    except (ConfigError, OSError) as exc:
        print(f"tb-dlms install: {exc}", file=sys.stderr)
        return 2
    for item in done:
        note = "  (yours: left as it is)" if item.status == "kept" and not item.ours else ""
        print(f"{item.status:9} {item.path}{note}")
    kept = [item for item in done if item.status == "kept" and item.ours]
    if kept:
        print(
            "tb-dlms install: existing files kept (not ours): use --force to replace them",
            file=sys.stderr,
        )
    if args.check:
        from ..extension import LOADER_FILES

        try:
            for class_name in LOADER_FILES.values():
                cls = check_loader(folder / args.connector_type, class_name)
                print(f"loads     {class_name} from {cls.__module__}")
        except ConfigError as exc:
            print(f"tb-dlms install: {exc}", file=sys.stderr)
            return 3
    print('add to tb_gateway.json "connectors":')
    print("  " + json.dumps(connector_entry(args.connector_type)))
    return 1 if kept else 0
