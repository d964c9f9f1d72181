"""``tb-dlms simulate``'s profile flags: each reaches MeterOptions, and --print-profile shows
meter 0's rows as the model holds them (the same rows a client must read)."""

from __future__ import annotations

import datetime as dt

from tb_dlms.cli import build_parser, main
from tb_dlms.commands.simulate import _options


def test_flags_reach_the_meter_options() -> None:
    args = build_parser().parse_args([
        "simulate", "--no-range-access", "--clock-status-every", "4",
        "--time-zone", "Europe/Madrid", "--deviation-unspecified",
    ])
    o = _options(args)
    assert (o.profile_range_access, o.clock_status_every, o.time_zone,
            o.deviation_unspecified) == (False, 4, "Europe/Madrid", True)
    d = _options(build_parser().parse_args(["simulate"]))
    assert (d.profile_range_access, d.clock_status_every, d.time_zone,
            d.deviation_unspecified) == (True, 0, "", False)


def test_print_profile_in_local_time(capsys) -> None:
    assert main(["simulate", "--time-zone", "Europe/Madrid", "--clock-status-every", "2",
                 "--print-profile", "1-0:98.1.0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 62
    entry, stamp, status, imp, exp, demand = lines[-1].split()
    assert entry == "62"
    when = dt.datetime.fromisoformat(stamp)
    assert (when.hour, when.minute) == (0, 0)  # local midnight
    assert when.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
    assert status in ("status=0x00", "status=0x01", "status=0x02", "status=0x80",
                      "status=0x81", "status=0x82")
    assert float(imp) > 0 and float(exp) > 0 and float(demand) > 0
    assert {line.split()[2] for line in lines} - {"status=0x00", "status=0x80"}  # flagged rows


def test_bad_zone_and_unknown_profile_exit_2(capsys) -> None:
    assert main(["simulate", "--time-zone", "Mars/Olympus", "--print-profile", "1-0:99.1.0"]) == 2
    assert "time_zone 'Mars/Olympus'" in capsys.readouterr().err
    assert main(["simulate", "--print-profile", "1-0:99.2.0"]) == 2
    assert "no simulated profile at 1-0:99.2.0.255" in capsys.readouterr().err
