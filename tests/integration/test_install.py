"""``tb-dlms install`` against the gateway's own loader, and the harness that runs the real gateway.

Provenance: the loader behaviour tested here is thingsboard-gateway 3.8.5's
``tb_utility/tb_loader.py`` (TBModuleLoader: search path, every top-level .py executed by path),
as described in /work/shared/design/GATEWAY_FACTS.md.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway
from tb_dlms.commands import install as inst
from tb_dlms.extension import LOADER_FILES, MARKER

pytestmark = pytest.mark.integration


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from tb_dlms.cli import main; sys.exit(main())", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def gateway_loader(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The gateway's TBModuleLoader with its class-level caches reset after the test."""
    from thingsboard_gateway.tb_utility.tb_loader import TBModuleLoader

    monkeypatch.setattr(TBModuleLoader, "PATHS", [])
    monkeypatch.setattr(TBModuleLoader, "LOADED_CONNECTORS", {})
    return TBModuleLoader


# --- the files and the command --------------------------------------------------------------


@pytest.fixture
def ext(tmp_path: Path) -> Path:
    """An extensions folder as a gateway has one (the command refuses any other)."""
    folder = tmp_path / "extensions"
    folder.mkdir()
    return folder


def test_loader_files_are_one_absolute_import_each() -> None:
    # The gateway executes them with no package: no relative import, nothing else at import time.
    for name, cls in LOADER_FILES.items():
        text = inst.loader_sources()[name]
        assert text.startswith(MARKER)
        tree = ast.parse(text)
        imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert len(imports) == 1
        imp = imports[0]
        assert isinstance(imp, ast.ImportFrom) and imp.level == 0
        assert imp.module is not None and imp.module.startswith("tb_dlms.")
        assert [a.name for a in imp.names] == [cls]
        others = [n for n in tree.body if n is not imp]
        assert all(isinstance(n, ast.Assign) for n in others)  # only __all__


def test_install_writes_loader_files_and_is_idempotent(ext: Path) -> None:
    first = run_cli("install", str(ext))
    assert first.returncode == 0, first.stderr
    folder = ext / "dlms"
    assert sorted(p.name for p in folder.iterdir()) == sorted(LOADER_FILES)
    for name, text in inst.loader_sources().items():
        assert (folder / name).read_text(encoding="utf-8") == text
        assert f"written   {folder / name}" in first.stdout
    assert json.dumps(inst.connector_entry("dlms")) in first.stdout

    again = run_cli("install", str(ext))
    assert again.returncode == 0
    assert again.stdout.count("unchanged") == len(LOADER_FILES)
    assert "written" not in again.stdout


def test_install_keeps_foreign_files_unless_forced(ext: Path) -> None:
    folder = ext / "dlms"
    folder.mkdir()
    (folder / "dlms_connector.py").write_text("class DlmsConnector: pass\n")  # a user's own file
    kept = inst.install(ext)
    assert {w.path.name: w.status for w in kept} == {
        "dlms_connector.py": "kept",
        "dlms_converter.py": "written",
    }
    assert (folder / "dlms_connector.py").read_text() == "class DlmsConnector: pass\n"
    assert run_cli("install", str(ext)).returncode == 1  # told, not silently skipped

    forced = inst.install(ext, force=True)
    assert [w.status for w in forced] == ["written", "unchanged"]


def test_install_upgrades_its_own_older_files(ext: Path) -> None:
    folder = ext / "dlms"
    folder.mkdir()
    (folder / "dlms_connector.py").write_text(MARKER + " (older version)\nimport tb_dlms\n")
    statuses = {w.path.name: w.status for w in inst.install(ext)}
    assert statuses["dlms_connector.py"] == "written"


@pytest.mark.parametrize("bad", ["modbus", "mqtt", "s7", "grpc", "../x", ""])
def test_install_refuses_builtin_and_bad_types(ext: Path, bad: str) -> None:
    result = run_cli("install", str(ext), "--type", bad)
    assert result.returncode == 2
    assert "tb-dlms install:" in result.stderr
    assert list(ext.iterdir()) == []


def test_install_custom_type_for_the_thingsboard_ui(ext: Path) -> None:
    assert run_cli("install", str(ext), "--type", "custom").returncode == 0
    assert sorted(p.name for p in (ext / "custom").iterdir()) == sorted(LOADER_FILES)
    assert inst.connector_entry("custom")["type"] == "custom"


def test_install_copies_example_config_without_overwriting(ext: Path) -> None:
    try:
        example = inst.example_config()
    except inst.ConfigError:
        pytest.skip("config/dlms.json not shipped yet")
    conf = ext.parent / "config"
    conf.mkdir()
    inst.install(ext, config_dir=conf)
    assert (conf / "dlms.json").read_text(encoding="utf-8") == example
    (conf / "dlms.json").write_text("{}")
    statuses = [w.status for w in inst.install(ext, config_dir=conf)]
    assert statuses[-1] == "kept" and (conf / "dlms.json").read_text() == "{}"


def test_install_again_over_the_users_edited_config_keeps_it_and_succeeds(ext: Path) -> None:
    conf = ext.parent / "config"
    conf.mkdir()
    assert run_cli("install", str(ext), "--config-dir", str(conf)).returncode == 0
    edited = (conf / "dlms.json").read_text(encoding="utf-8").replace("Meter", "MyMeter")
    (conf / "dlms.json").write_text(edited, encoding="utf-8")
    again = run_cli("install", str(ext), "--config-dir", str(conf))
    assert again.returncode == 0, again.stderr
    assert f"kept      {conf / 'dlms.json'}  (yours" in again.stdout
    assert (conf / "dlms.json").read_text(encoding="utf-8") == edited


@pytest.mark.parametrize("where", ["extentions", "extensions/dlms", "gateway/extensions"])
def test_install_refuses_a_folder_that_is_not_a_gateway_extensions_folder(
    ext: Path, where: str
) -> None:
    mistyped = ext.parent / where  # a typo, a folder one level too deep, one that is not there
    result = run_cli("install", str(mistyped))
    assert result.returncode == 2
    assert f"tb-dlms install: {mistyped}" in result.stderr
    assert not mistyped.exists() and list(ext.iterdir()) == []
    missing_conf = run_cli("install", str(ext), "--config-dir", str(ext.parent / "confg"))
    assert missing_conf.returncode == 2 and "does not exist" in missing_conf.stderr
    assert not (ext.parent / "confg").exists()


# --- the gateway's loader finds what install wrote ----------------------------------------


@needs_gateway
def test_gateway_loader_executes_the_thin_files(
    ext: Path, gateway_loader: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Independent of the connector's code: stand-in modules at the imported names prove that the
    # gateway's loader runs our files and takes the class they import.
    fake_connector = type("DlmsConnector", (), {})
    fake_converter = type("DlmsUplinkConverter", (), {})
    for modname, cls in (
        ("tb_dlms.connector.dlms_connector", fake_connector),
        ("tb_dlms.converters.uplink", fake_converter),
    ):
        module = types.ModuleType(modname)
        setattr(module, cls.__name__, cls)
        monkeypatch.setitem(sys.modules, modname, module)
    inst.install(ext)
    gateway_loader.PATHS.append(str(ext))
    assert gateway_loader.import_module("dlms", "DlmsConnector") is fake_connector
    assert gateway_loader.import_module("dlms", "DlmsUplinkConverter") is fake_converter


@needs_gateway
@needs_connector
def test_gateway_loader_finds_the_real_connector(ext: Path, gateway_loader: Any) -> None:
    from tb_dlms.connector.dlms_connector import DlmsConnector
    from tb_dlms.converters.uplink import DlmsUplinkConverter
    from thingsboard_gateway.connectors.connector import Connector

    inst.install(ext)
    gateway_loader.PATHS.append(str(ext))
    cls = gateway_loader.import_module("dlms", "DlmsConnector")
    assert cls is DlmsConnector and issubclass(cls, Connector)
    assert gateway_loader.import_module("dlms", "DlmsUplinkConverter") is DlmsUplinkConverter
    result = run_cli("install", str(ext), "--check")
    assert result.returncode == 0, result.stderr
    assert "loads     DlmsConnector" in result.stdout


@needs_gateway
def test_default_folders_are_the_ones_the_gateway_searches() -> None:
    from thingsboard_gateway.tb_utility import tb_loader

    # pip layout: <package>/extensions, the second entry of the loader's search path.
    package = Path(tb_loader.__file__).resolve().parent.parent
    assert inst.default_extensions_dir("pip").resolve() == package / "extensions"
    # docker layout: the Debian folder, searched first and no VOLUME of the image.
    assert str(inst.default_extensions_dir("docker")) == tb_loader.DEB_INSTALLATION_EXTENSION_PATH


def test_dockerfile_installs_with_the_docker_layout() -> None:
    dockerfile = Path(__file__).resolve().parents[2] / "docker" / "Dockerfile"
    if not dockerfile.exists():
        pytest.skip("docker/Dockerfile not written yet")
    text = dockerfile.read_text(encoding="utf-8")
    assert "FROM thingsboard/tb-gateway:${TB_GATEWAY_TAG}" in text
    assert "ARG TB_GATEWAY_TAG=3.8." in text  # pinned to the gateway version we test against
    assert "tb-dlms install --layout docker" in text


# --- the harness: the real gateway against the stand-in -------------------------------------


@needs_gateway
@needs_broker
def test_bare_gateway_connects_to_the_standin(standin: Any, gateway_factory: Any) -> None:
    gw = gateway_factory()
    standin.wait_for(lambda: standin.session_limit_requests, timeout=20)
    gw.wait_for_output("Gateway started", timeout=20)
    # The gateway answers a gateway-level RPC through the stand-in: both directions work.
    assert standin.gateway_rpc("gateway_ping", timeout=10) == {"code": 200, "resp": "pong"}
    # No updater traffic got out: its POST hit the dead proxy (or had not run yet).
    workdir = gw.workdir
    assert gw.stop() == 0  # SIGINT: clean shutdown
    assert not workdir.exists()  # nothing left behind, extensions view included


@needs_gateway
@needs_broker
@needs_connector
def test_real_gateway_loads_connector_and_telemetry_arrives(
    standin: Any, gateway_factory: Any, simulator: Any
) -> None:
    from tb_dlms.commands.install import connector_entry
    from tb_dlms.sandbox.meters import REGISTERS, simulator_dlms_config

    sim = simulator(2)
    gw = gateway_factory(
        connectors=[connector_entry("dlms")],
        connector_files={"dlms.json": simulator_dlms_config(sim.ports, period_ms=500)},
        install="dlms",
    )
    keys = [key for key, _ in REGISTERS]
    for device in ("Meter-1", "Meter-2"):
        values = standin.wait_for_telemetry(device, keys, timeout=40)
        assert 100.0 < float(values["voltage_l1"]) < 300.0
    assert {"Meter-1", "Meter-2"} <= set(standin.connected_devices())
    assert "Import DlmsConnector from" in gw.output()
    # Downlink through the gateway: the stand-in's device RPC reaches the meter and back.
    reply = standin.device_rpc("Meter-1", "read", {"obis": "1-1:32.7.0"}, timeout=20)
    assert reply.get("success") is True, reply
    assert gw.stop() == 0


# --- docker files and dashboard (not built or imported here: checked for consistency) --------


ROOT = Path(__file__).resolve().parents[2]


def test_docker_default_config_is_valid_and_points_at_the_simulator() -> None:
    from tb_dlms.connector.config import load_config

    gateway = json.loads((ROOT / "docker/config/tb_gateway.json").read_text(encoding="utf-8"))
    assert gateway["connectors"] == [inst.connector_entry("dlms")]
    assert gateway["thingsboard"]["host"] == "thingsboard"  # the compose service
    dlms = load_config(json.loads((ROOT / "docker/config/dlms.json").read_text(encoding="utf-8")))
    assert not dlms.errors and not dlms.warnings and len(dlms.meters) == 3
    compose = (ROOT / "docker/docker-compose.yml").read_text(encoding="utf-8")
    ports = sorted(m.spec.transport.port for m in dlms.meters)  # type: ignore[attr-defined]
    assert ports == [4061, 4062, 4063] and '"--base-port", "4061"' in compose
    assert {m.spec.transport.host for m in dlms.meters} == {"dlms-simulator"}  # type: ignore[attr-defined]
    assert "dlms-simulator:" in compose and "stop_signal: SIGINT" in compose


def test_dashboard_shows_the_keys_the_connector_publishes() -> None:
    from tb_dlms.connector.alarms import ALARM_KEYS
    from tb_dlms.engine.health import SNAPSHOT_KEYS
    from tb_dlms.sandbox.meters import REGISTERS

    dash = json.loads((ROOT / "dashboards/dlms_meter.json").read_text(encoding="utf-8"))
    conf = dash["configuration"]
    aliases = set(conf["entityAliases"])
    shown: set[str] = set()
    for wid, widget in conf["widgets"].items():
        assert widget["id"] == wid
        assert wid in conf["states"]["default"]["layouts"]["main"]["widgets"]
        for source in widget["config"]["datasources"]:
            assert source["entityAliasId"] in aliases
            shown.update(k["name"] for k in source["dataKeys"])
    published = {k for k, _ in REGISTERS} | set(SNAPSHOT_KEYS) | set(ALARM_KEYS) | {"serial_number"}
    assert shown <= published, shown - published  # no key the connector never sends
    assert {k for k, _ in REGISTERS} <= shown  # voltage, current, power, frequency, energy
    assert {"connection_state", "success_rate", "consecutive_failures"} <= shown
