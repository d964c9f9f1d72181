"""scripts/bootstrap.sh (run by scripts/test.sh before the tests): its install step must not bury
the test results under pip's build warnings, and must still say so when the install fails.

The script runs for real, on a copy of the scripts folder, with a stand-in ``python`` in the
venv folder that behaves like pip does here (45 lines of setuptools warnings on stderr)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOISE = "\n".join(
    f"  /tmp/pip-build-env/setuptools/dist.py:765: BuildBackendWarning: line {i}"
    for i in range(45)
)


def _bootstrap(tmp_path: Path, pip_exit: int) -> subprocess.CompletedProcess[str]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", repo / "scripts" / "bootstrap.sh")
    (repo / "setup.py").write_text("# stand-in\n")
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    python = venv_bin / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then\n'
        f"  cat >&2 <<'EOF'\n{NOISE}\nEOF\n"
        f"  exit {pip_exit}\n"
        "fi\n"
        "exit 0\n"
    )
    python.chmod(0o755)
    tools = tmp_path / "tools"  # socat and mosquitto present: no apt-get
    tools.mkdir()
    for name in ("socat", "mosquitto"):
        (tools / name).write_text("#!/bin/sh\nexit 0\n")
        (tools / name).chmod(0o755)
    env = {**os.environ, "TB_DLMS_VENV": str(tmp_path / "venv"),
           "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-c", f'. "{repo}/scripts/bootstrap.sh"'],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_successful_install_prints_one_line_not_the_build_warnings(tmp_path: Path) -> None:
    result = _bootstrap(tmp_path, pip_exit=0)
    assert result.returncode == 0, result.stderr
    assert "BuildBackendWarning" not in result.stderr + result.stdout
    assert len(result.stderr.splitlines()) <= 2, result.stderr
    assert (tmp_path / "venv" / ".tb-dlms-installed").exists()
    assert "BuildBackendWarning" in (tmp_path / "venv" / "pip-install.log").read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_failed_install_shows_pip_output_and_fails(tmp_path: Path) -> None:
    result = _bootstrap(tmp_path, pip_exit=1)
    assert result.returncode != 0
    assert "BuildBackendWarning: line 44" in result.stderr
    assert "bootstrap: install failed" in result.stderr
    assert not (tmp_path / "venv" / ".tb-dlms-installed").exists()
