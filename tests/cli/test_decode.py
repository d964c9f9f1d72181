"""``tb-dlms decode``: captures from the field and from Gurux become readable JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tb_dlms.cli import main
from tb_dlms.protocol.apdu import AttributeDescriptor, GetResponseWithList
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.hdlc import Frame, FrameKind, HdlcAddress, encode_frame
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.wrapper import encode_wrapper

# Real frames of the Microstar meter, from ../shared/seed/architecture-v2.es.md ("Handshake DLMS").
SEED_SNRM = "7E A0 07 03 03 93 8C 11 7E"
SEED_DISC = "7E A0 07 03 03 53 80 D7 7E"
# Built by gurux-dlms 1.0.203 GXDLMSClient(True, 1, 1, LOW, "22222222", HDLC).aarqRequest():
# its header 7E A0 44 03 03 10 65 94 is byte for byte the AARQ of the seed document.
GURUX_AARQ_LLS = (
    "7ea0440303106594e6e6006036a1090607608574050801018a0207808b0760857405080201ac0a80083232323232"
    "323232be10040e01000000065f1f0400401e5dffff09a17e"
)
# gurux-dlms 1.0.203 read(GXDLMSRegister("1.1.32.7.0.255"), 2) after the AARQ above.
GURUX_GET = "7ea019030332ecc8e6e600c001c100030101200700ff0200501c7e"


def run(capsys, *hexwords: str) -> tuple[int, dict | None, str]:
    code = main(["decode", *hexwords])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else None), err


def test_seed_snrm_and_disc(capsys):
    code, out, _ = run(capsys, SEED_SNRM)
    assert code == 0
    assert out["hdlc"]["type"] == "SNRM"
    assert out["hdlc"]["destination"] == {"logical": 1, "physical": None, "size": 1}
    code, out, _ = run(capsys, SEED_DISC)
    assert out["hdlc"]["type"] == "DISC"


def test_aarq_password_is_masked_unless_asked(capsys):
    code, out, _ = run(capsys, GURUX_AARQ_LLS)
    assert code == 0
    apdu = out["hdlc"]["apdu"]
    assert apdu["type"] == "AARQ" and apdu["mechanism"] == "lls"
    assert "22222222" not in json.dumps(out)
    assert apdu["calling_authentication_value"].startswith("***")
    assert "multiple-references" in apdu["user_information"]["proposed_conformance"]
    assert main(["decode", "--show-secrets", GURUX_AARQ_LLS]) == 0
    assert "22222222" in capsys.readouterr().out


def test_two_frames_and_get_request(capsys):
    code, out, _ = run(capsys, GURUX_AARQ_LLS, GURUX_GET)
    assert code == 0
    first, second = out["frames"]
    assert (first["ns"], second["ns"], second["nr"]) == (0, 1, 1)
    get = second["apdu"]
    assert get["type"] == "GetRequestNormal"
    assert get["descriptor"] == {"class_id": 3, "obis": "1-1:32.7.0.255", "attribute": 2}


def test_segmented_response_is_reassembled(capsys):
    values = tuple(Typed(DataType.LONG_UNSIGNED, 2300 + i) for i in range(9))
    apdu = b"\xe6\xe7\x00" + GetResponseWithList(5, values).encode()
    client, server = HdlcAddress(16), HdlcAddress(1, 17, 2)
    half = len(apdu) // 2
    frames = [
        Frame(FrameKind.I, client, server, True, 0, 1, True, apdu[:half]),
        Frame(FrameKind.I, client, server, True, 1, 1, False, apdu[half:]),
    ]
    # Consecutive frames share their flag, as meters send them.
    wire = encode_frame(frames[0]) + encode_frame(frames[1])[1:]
    code, out, _ = run(capsys, wire.hex(" "))
    assert code == 0
    seg, last = out["frames"]
    assert seg["segmented"] and "apdu" not in seg
    assert last["source"] == {"logical": 1, "physical": 17, "size": 2}
    assert last["apdu"]["type"] == "GetResponseWithList"
    assert last["apdu"]["results"] == [2300 + i for i in range(9)]


def test_wrapper_and_bare_apdu(capsys):
    get = AttributeDescriptor(8, Obis.parse("0-0:1.0.0"), 2)
    from tb_dlms.protocol.apdu import GetRequestNormal

    apdu = GetRequestNormal(3, get).encode()
    code, out, _ = run(capsys, encode_wrapper(apdu, 16, 1).hex())
    assert code == 0
    assert out["wrapper"]["source_wport"] == 16 and out["wrapper"]["destination_wport"] == 1
    assert out["apdu"]["descriptor"]["obis"] == "0-0:1.0.0.255"
    code, out, _ = run(capsys, apdu.hex())
    assert out["apdu"]["invoke_id"] == 3


@pytest.mark.parametrize(
    "capture, fragment",
    [
        ("7E A0 07 03 03 93 8C 12 7E", "FCS mismatch (at byte 6)"),
        ("7E A0 07 03", "truncated"),
        ("7E A0 44 03 03 10 65 95 E6", "truncated"),
        ("zz", "not hexadecimal"),
        ("C4 01 C1 00 12", "APDU"),
        ("00 01 00 10 00 01 00 09 C0 01", "wrapper: length field says 9"),
    ],
)
def test_broken_captures_exit_2_with_one_line(capsys, capture, fragment):
    code, out, err = run(capsys, *capture.split())
    assert code == 2 and out is None
    assert fragment in err and err.count("\n") == 1


def test_console_script_is_installed():
    done = subprocess.run(
        [sys.executable, "-m", "tb_dlms.cli", "decode", SEED_SNRM],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hdlc"]["type"] == "SNRM"
