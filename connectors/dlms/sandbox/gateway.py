"""Run the REAL ThingsBoard IoT Gateway (``python -m thingsboard_gateway.tb_gateway``) in a temp dir.

Where the connector goes. The gateway's loader searches ``/var/lib/thingsboard_gateway/extensions``
and ``<thingsboard_gateway package>/extensions`` only, both shared by every run on the machine. To
leave nothing behind, the run gets a *private view of the installed gateway package*:

    <run>/pkg/thingsboard_gateway/           a real folder
        gateway -> <site-packages>/thingsboard_gateway/gateway    (symlink, same for every entry)
        ...
        extensions/                          a real folder
            modbus -> <site-packages>/.../extensions/modbus        (symlinks to the built-ins)
            dlms/                            written by ``tb-dlms install <run>/pkg/.../extensions``

and ``PYTHONPATH=<run>/pkg``. The gateway's code is untouched: its own ``find_paths`` computes the
package root from ``__file__`` (``abspath``, symlinks not resolved), so it searches the private
``extensions`` folder, where ``tb-dlms install`` put the loader files exactly as a user would in
``<site-packages>/thingsboard_gateway/extensions``. Deleting ``<run>`` removes every trace.

The child's environment is cleaned of the variables the gateway lets override its config
(``host``, ``port``, ``accessToken``, ``TB_GW_*`` ...) and its updater is pointed at a dead proxy
(``HTTPS_PROXY=http://127.0.0.1:9``) so a test run never phones home. The gateway handles SIGINT
(closes connectors, sends ``v1/gateway/disconnect``); SIGTERM it does not, so :meth:`stop` sends
SIGINT and kills only after a grace period.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["GatewayError", "GatewayProcess", "make_gateway_view", "write_gateway_config"]

# Variables the gateway reads over its config (tb_utility.get_service_environmental_variables).
_OVERRIDES = frozenset(
    [
        "host",
        "port",
        "type",
        "accessToken",
        "caCert",
        "privateKey",
        "cert",
        "clientId",
        "password",
        "username",
        "proxy_host",
        "proxy_port",
    ]
)
DEAD_PROXY = "http://127.0.0.1:9"


class GatewayError(RuntimeError):
    """The gateway did not start, or did not reach the expected state in time."""


def gateway_package_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("thingsboard_gateway")
    if spec is None or not spec.submodule_search_locations:
        raise GatewayError("thingsboard_gateway is not installed (pip install '.[gateway]')")
    return Path(next(iter(spec.submodule_search_locations)))


def make_gateway_view(root: Path, package: Path | None = None) -> Path:
    """Build ``root/thingsboard_gateway`` as a view of the installed package with a private
    ``extensions`` folder; return that extensions folder. A view already there (a gateway
    restarted on the same work dir) is built again."""
    package = package or gateway_package_dir()
    view = root / "thingsboard_gateway"
    if view.exists():
        shutil.rmtree(view)
    view.mkdir(parents=True)
    for entry in package.iterdir():
        if entry.name in ("extensions", "__pycache__"):
            continue
        (view / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    extensions = view / "extensions"
    extensions.mkdir()
    for entry in (package / "extensions").iterdir():
        if entry.name != "__pycache__":
            (extensions / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return extensions


def gateway_json(
    host: str, port: int, connectors: list[dict[str, Any]], access_token: str = "dlms-test"
) -> dict[str, Any]:
    """A ``tb_gateway.json`` for a plain broker: no remote configuration, memory storage."""
    return {
        "thingsboard": {
            "host": host,
            "port": port,
            "remoteShell": False,
            "remoteConfiguration": False,  # a plain broker would echo the gateway's own config
            "latencyDebugMode": False,
            "statistics": {
                "enable": True,
                "statsSendPeriodInSeconds": 60,
                "customStatsSendPeriodInSeconds": 3600,
            },
            "deviceFiltering": {"enable": False, "filterFile": "list.json"},
            "maxPayloadSizeBytes": 65536,
            "minPackSendDelayMS": 50,
            "minPackSizeToSend": 500,
            "checkConnectorsConfigurationInSeconds": 60,
            "handleDeviceRenaming": True,
            "security": {"type": "accessToken", "accessToken": access_token},
            "qos": 1,
            "reportStrategy": {"type": "ON_RECEIVED"},
            "checkingDeviceActivity": {
                "checkDeviceInactivity": False,
                "inactivityTimeoutSeconds": 300,
                "inactivityCheckPeriodSeconds": 10,
            },
        },
        "storage": {"type": "memory", "read_records_count": 100, "max_records_count": 100000},
        "grpc": {"enabled": False},
        "connectors": connectors,
    }


def write_gateway_config(
    config_dir: Path,
    host: str,
    port: int,
    connectors: list[dict[str, Any]] | None = None,
    connector_files: dict[str, Any] | None = None,
) -> Path:
    """Write ``tb_gateway.json``, ``logs.json`` (the package's own) and each connector file
    (name -> dict or text) into ``config_dir``; return the path of ``tb_gateway.json``."""
    config_dir.mkdir(parents=True, exist_ok=True)
    main = config_dir / "tb_gateway.json"
    main.write_text(json.dumps(gateway_json(host, port, connectors or []), indent=2), "utf-8")
    shutil.copyfile(gateway_package_dir() / "config" / "logs.json", config_dir / "logs.json")
    for name, content in (connector_files or {}).items():
        text = content if isinstance(content, str) else json.dumps(content, indent=2)
        (config_dir / name).write_text(text, encoding="utf-8")
    return main


class GatewayProcess:
    """The real gateway in ``workdir`` (a temp dir by default, removed by :meth:`stop`).

    Layout: ``workdir/config`` (pass ``connectors`` and ``connector_files`` or write it before
    :meth:`start`), ``workdir/logs``, ``workdir/pkg`` (the package view), ``workdir/stdout.log``.
    """

    def __init__(
        self,
        broker_host: str,
        broker_port: int,
        connectors: list[dict[str, Any]] | None = None,
        connector_files: dict[str, Any] | None = None,
        workdir: str | os.PathLike[str] | None = None,
        keep: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="tb-dlms-gateway-"))
        self.keep = keep
        self.config_dir = self.workdir / "config"
        self.logs_dir = self.workdir / "logs"
        self.stdout_path = self.workdir / "stdout.log"
        self.extensions_dir = make_gateway_view(self.workdir / "pkg")
        self.extra_env = dict(extra_env or {})
        self.returncode: int | None = None
        write_gateway_config(self.config_dir, broker_host, broker_port, connectors, connector_files)
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: Any = None

    def install_connector(self, connector_type: str = "dlms") -> list[Any]:
        """``tb-dlms install`` into this gateway's extensions folder (what a user runs)."""
        from ..commands.install import install

        return install(self.extensions_dir, connector_type)

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _OVERRIDES
            and not k.startswith("TB_GW_")
            and k.lower() not in ("no_proxy", "http_proxy", "https_proxy")
        }
        env.update(
            TB_GW_CONFIG_DIR=str(self.config_dir),
            TB_GW_LOGS_PATH=str(self.logs_dir),
            HTTPS_PROXY=DEAD_PROXY,
            https_proxy=DEAD_PROXY,
            HTTP_PROXY=DEAD_PROXY,
            http_proxy=DEAD_PROXY,
            PYTHONUNBUFFERED="1",
        )
        extra = dict(self.extra_env)
        # The package view must come first on the path; other entries follow it.
        paths = [
            str(self.workdir / "pkg"),
            extra.pop("PYTHONPATH", ""),
            os.environ.get("PYTHONPATH", ""),
        ]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env.update(extra)
        return env

    def start(self) -> GatewayProcess:
        self.logs_dir.mkdir(exist_ok=True)
        self._out = open(self.stdout_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "thingsboard_gateway.tb_gateway"],
            cwd=self.workdir,  # the gateway creates ./logs here
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us; we stop it in order
        )
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def output(self) -> str:
        """The gateway's console output so far (all its loggers log to stdout too)."""
        try:
            return self.stdout_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log(self, name: str) -> str:
        """One of the gateway's log files (``service``, ``connector``, ``dlms_meters_connector``)."""
        path = self.logs_dir / (name if name.endswith(".log") else name + ".log")
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_for_output(self, text: str, timeout: float = 20.0) -> None:
        """Wait until ``text`` appears in the console output; GatewayError if the process ends
        or time runs out (the message carries the output's tail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if not self.running:
                raise GatewayError(
                    f"gateway exited ({self.returncode_now()}) before {text!r}:\n"
                    + self.output()[-3000:]
                )
            time.sleep(0.1)
        raise GatewayError(f"no {text!r} within {timeout} s:\n" + self.output()[-3000:])

    def returncode_now(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGINT (the gateway's clean shutdown), SIGKILL to the group after ``grace`` seconds;
        then remove the work dir unless ``keep``. Returns the exit code."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGINT)
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            self.returncode = proc.returncode
            try:  # whatever it started in its own session goes too
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if self._out is not None:
            self._out.close()
            self._out = None
        if self._own_dir and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.returncode

    def __enter__(self) -> GatewayProcess:  # noqa: PYI034 - no typing_extensions on 3.9
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
