# ruff: noqa: E501 - the patterns are the gateway's own lines, which are longer
"""The smallest upstream change that makes thingsboard-gateway 3.8 take 10,000 new devices fast.

An experiment for the benchmarks (``bench_fleet.py --patched-gateway``), never shipped: it writes a
patched copy of ``gateway/tb_gateway_service.py`` into one sandbox gateway's package view, so the
same run can show the stock gateway and the patched one side by side. ``python gateway_patch.py``
prints the change as a unified diff (the text of the upstream proposal).

Two costs grow with the number of devices the gateway knows (n):

1. ``add_device`` calls ``__save_persistent_devices`` for every new device, which serialises every
   known device to ``connected_devices.json`` (simplejson, indent 2, sorted: ~8 ms at 5,000
   devices, ~40 ms at 10,000). 10,000 new devices: O(n^2), minutes of one thread, during which
   the data path waits on the same lock. Change: the save only schedules a write one second
   later; the changes of that second are written together.
2. ``__load_persistent_devices`` (at every start, twice) runs, for each device loaded, a loop over
   every device loaded so far calling ``add_device``: O(n^2) calls at 10,000 known devices.
   Change: that loop once, after the per-device loop (the indentation looks accidental).
"""

from __future__ import annotations

import difflib
import shutil
import sys
from pathlib import Path

SAVE_OLD = """    def __save_persistent_devices(self):
        with self.__lock:
            data_to_save = {}"""
SAVE_NEW = """    def __save_persistent_devices(self):
        # Every new device used to rewrite the whole file (O(devices) each): one write a second,
        # with every change of that second, instead.
        with self.__lock:
            if getattr(self, "_save_timer", None) is None:
                self._save_timer = Timer(1.0, self.__write_persistent_devices)
                self._save_timer.daemon = True
                self._save_timer.start()

    def __write_persistent_devices(self):
        with self.__lock:
            self._save_timer = None
            data_to_save = {}"""
LOAD_OLD = """                    self.__connected_devices[device_name] = device_data_to_save
                    for device in list(self.__connected_devices.keys()):
                        if device in self.__connected_devices:
                            self.add_device(device, self.__connected_devices[device], self.__connected_devices[device][
                                DEVICE_TYPE_PARAMETER])
                    self.__saved_devices[device_name] = device_data_to_save

                except Exception as e:
                    log.error("Error while loading connected devices from file with error: %s", e, exc_info=e)
                    continue
"""
LOAD_NEW = """                    self.__connected_devices[device_name] = device_data_to_save
                    self.__saved_devices[device_name] = device_data_to_save

                except Exception as e:
                    log.error("Error while loading connected devices from file with error: %s", e, exc_info=e)
                    continue
            # Once for all the devices loaded (it ran once per device loaded: O(devices^2)).
            for device in list(self.__connected_devices.keys()):
                if device in self.__connected_devices:
                    self.add_device(device, self.__connected_devices[device], self.__connected_devices[device][
                        DEVICE_TYPE_PARAMETER])
"""
IMPORT_OLD = "from threading import RLock, Thread, main_thread, current_thread, Event\n"


def patched_source(original: str) -> str:
    out = original
    for old, new in ((SAVE_OLD, SAVE_NEW), (LOAD_OLD, LOAD_NEW),
                     (IMPORT_OLD, IMPORT_OLD.replace("Event", "Event, Timer"))):
        if out.count(old) != 1:
            raise SystemExit("gateway_patch: this thingsboard-gateway version differs from 3.8.5 "
                             "where the patch applies; update benchmarks/gateway_patch.py")
        out = out.replace(old, new)
    return out


def service_path(package: Path) -> Path:
    return package / "gateway" / "tb_gateway_service.py"


def apply(view_package: Path, installed: Path) -> None:
    """Make ``view_package/gateway`` a folder of links to the installed one, but with the patched
    service module (the sandbox view links the whole folder)."""
    gateway = view_package / "gateway"
    if gateway.is_symlink():
        gateway.unlink()
    if gateway.exists():
        shutil.rmtree(gateway)
    gateway.mkdir()
    for entry in (installed / "gateway").iterdir():
        if entry.name not in ("tb_gateway_service.py", "__pycache__"):
            (gateway / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    source = service_path(installed).read_text(encoding="utf-8")
    service_path(view_package).write_text(patched_source(source), encoding="utf-8")


def main() -> int:
    from tb_dlms.sandbox.gateway import gateway_package_dir

    original = service_path(gateway_package_dir()).read_text(encoding="utf-8")
    sys.stdout.writelines(difflib.unified_diff(
        original.splitlines(keepends=True), patched_source(original).splitlines(keepends=True),
        "a/thingsboard_gateway/gateway/tb_gateway_service.py",
        "b/thingsboard_gateway/gateway/tb_gateway_service.py"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
