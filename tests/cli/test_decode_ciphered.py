"""``tb-dlms decode --block-key --auth-key``: ciphered captures (security suite 0/1) deciphered.

References: the Green Book suite 0 examples (the vectors of tests/protocol/security, with their
provenance there), and a capture recorded from ``tb-dlms simulate`` + ``tb-dlms read --trace``
decoded end to end by a third process. Gurux-made captures: test_decode_gurux.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from tb_dlms.cli import main
from tb_dlms.protocol.apdu import AARE, AARQ, ApplicationContext, AuthMechanism
from tb_dlms.protocol.apdu.xdlms import Conformance, InitiateResponse
from tb_dlms.protocol.hdlc import Frame, FrameKind, HdlcAddress, encode_frame
from tb_dlms.protocol.hdlc.link import LLC_REQUEST, LLC_RESPONSE
from tb_dlms.protocol.security import GcmKey, KeyKind, Policy, SecurityContext, SecurityControl
from tb_dlms.protocol.wrapper import encode_wrapper

H = bytes.fromhex
# Green Book ed. 7 suite 0 examples (see tests/protocol/security/test_security_vectors.py).
EK, AK = "000102030405060708090A0B0C0D0E0F", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
DK = "00112233445566778899AABBCCDDEEFF"  # the dedicated key inside GB_INITIATE
SERVER_TITLE, CLIENT_TITLE = "4D4D4D0000BC614E", "4D4D4D0000000001"
GB_APDU = {  # SC || IC || protected content of get-request C0 01 00 0008 0000010000FF 02 00
    Policy.AUTHENTICATION: "1001234567" "C0010000080000010000FF0200" "06725D910F9221D263877516",
    Policy.ENCRYPTION: "2001234567" "411312FF935A47566827C467BC",
    Policy.AUTHENTICATED_ENCRYPTION:
        "3001234567" "411312FF935A47566827C467BC" "7D825C3BE4A77C3FCC056B6B",
}
# glo-initiate-request of the Green Book (p. 265), ciphered by system title 4D4D4D0000BC614E.
GB_INITIATE = ("2130" "3001234567" "801302FF8A7874133D414CED25B42534D28DB0047720606B175BD522"
               "11BE68" "41DB204D39EE6FDB8E356855")
KEYS = ["--block-key", EK, "--auth-key", AK]
CONTEXT = SecurityContext(GcmKey(H(EK), H(AK)), dedicated_key=GcmKey(H(DK), H(AK)))


def decode(capsys, *args: str) -> tuple[int, dict | None, str]:
    capsys.readouterr()
    code = main(["decode", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else None), err


def no_key_in(text: str) -> bool:
    low = text.lower().replace(" ", "")
    return all(k.lower() not in low for k in (EK, AK, DK))


def glo_get(policy: Policy) -> str:
    content = GB_APDU[policy]
    return f"C8{len(content) // 2:02X}{content}"


@pytest.mark.parametrize("policy", list(Policy), ids=lambda p: p.label)
def test_green_book_glo_get_request_with_system_title(capsys, policy):
    code, out, err = decode(capsys, *KEYS, "--system-title", SERVER_TITLE, glo_get(policy))
    assert code == 0, err
    apdu = out["apdu"]
    assert apdu["type"] == "glo-get-request" and apdu["sender"] == "client"
    assert apdu["security"] == {
        "security_control": f"0x{policy.value:02X}", "suite": 0, "cipher": "AES-GCM-128",
        "authentication": policy.label != "enc", "encryption": policy.label != "auth",
        "key_set": "unicast", "compression": False, "invocation_counter": 0x01234567}
    assert apdu["key"] == "global"
    assert apdu["system_title"] == SERVER_TITLE.lower()
    assert apdu["system_title_from"] == "--system-title"
    assert apdu["tag_verified"] is (None if policy is Policy.ENCRYPTION else True)
    plain = apdu["plain_apdu"]
    assert plain["type"] == "GetRequestNormal" and plain["invoke_id"] == 0
    assert plain["descriptor"] == {"class_id": 8, "obis": "0-0:1.0.0.255", "attribute": 2}
    assert no_key_in(json.dumps(out) + err)


@pytest.mark.parametrize("policy", [Policy.AUTHENTICATION, Policy.AUTHENTICATED_ENCRYPTION],
                         ids=lambda p: p.label)
def test_wrong_key_is_a_per_apdu_error_and_exit_1(capsys, policy):
    wrong = ["--block-key", EK, "--auth-key", "11" * 16]
    code, out, err = decode(capsys, *wrong, "--system-title", SERVER_TITLE, glo_get(policy))
    assert code == 1 and err == ""
    apdu = out["apdu"]
    assert apdu["tag_verified"] is False and "plain_apdu" not in apdu
    assert "authentication tag mismatch" in apdu["error"]
    assert apdu["security"]["invocation_counter"] == 0x01234567  # the header is still shown
    assert "11" * 16 not in json.dumps(out) and no_key_in(json.dumps(out))


def test_wrong_block_key_on_encryption_only_is_caught_by_the_tag_it_names(capsys):
    code, out, _ = decode(capsys, "--block-key", "22" * 16, "--auth-key", AK,
                          "--system-title", SERVER_TITLE, glo_get(Policy.ENCRYPTION))
    assert code == 1
    assert "does not hold the APDU it names" in out["apdu"]["error"]
    assert "22" * 16 not in json.dumps(out)


def test_without_keys_the_header_shows_and_exit_0(capsys):
    code, out, err = decode(capsys, glo_get(Policy.AUTHENTICATED_ENCRYPTION))
    assert code == 0, err
    apdu = out["apdu"]
    assert apdu["type"] == "glo-get-request" and apdu["security"]["invocation_counter"] == 0x01234567
    assert "--block-key" in apdu["note"] and "plain_apdu" not in apdu


def test_no_system_title_anywhere_is_a_per_apdu_error(capsys):
    code, out, _ = decode(capsys, *KEYS, glo_get(Policy.AUTHENTICATED_ENCRYPTION))
    assert code == 1
    assert "client's system title is not in the capture" in out["apdu"]["error"]
    assert "--system-title" in out["apdu"]["error"]


def _aarq_aare_capture() -> tuple[bytes, str]:
    """HDLC: AARQ (Green Book glo-initiate-request with a dedicated key, calling-AP-title
    4D4D4D0000BC614E as in the example), AARE (server title CLIENT_TITLE: the roles of the two
    example titles swapped, so each direction needs its own), ded-get-request, glo-get-response."""
    client, server = HdlcAddress(16), HdlcAddress(1)
    aarq = AARQ(ApplicationContext.LOGICAL_NAME_WITH_CIPHERING, AuthMechanism.HLS_GMAC,
                b"K56iVagY", H(GB_INITIATE), H(SERVER_TITLE))
    initiate = InitiateResponse(Conformance(0x00501F), 1024).encode()
    aare = AARE(mechanism=AuthMechanism.HLS_GMAC, responding_authentication_value=b"P6wRJ21F",
                user_information=CONTEXT.encrypt(initiate, SecurityControl(), H(CLIENT_TITLE), 1),
                application_context=ApplicationContext.LOGICAL_NAME_WITH_CIPHERING,
                responding_ap_title=H(CLIENT_TITLE))
    get = H("C0010000080000010000FF0200")
    ded_get = CONTEXT.encrypt(get, SecurityControl(), H(SERVER_TITLE), 2, KeyKind.DEDICATED)
    response = H("C401C1" "00" "120915")  # get-response-normal, long-unsigned 2325
    glo_response = CONTEXT.encrypt(response, SecurityControl(Policy.AUTHENTICATION),
                                   H(CLIENT_TITLE), 2)
    frames = [
        Frame(FrameKind.I, server, client, True, 0, 0, False, LLC_REQUEST + aarq.encode()),
        Frame(FrameKind.I, client, server, True, 0, 1, False, LLC_RESPONSE + aare.encode()),
        Frame(FrameKind.I, server, client, True, 1, 1, False, LLC_REQUEST + ded_get),
        Frame(FrameKind.I, client, server, True, 1, 2, False, LLC_RESPONSE + glo_response),
    ]
    return b"".join(encode_frame(f) for f in frames), response.hex()


def test_titles_from_aarq_and_aare_and_the_dedicated_key_from_the_initiate(capsys):
    capture, _ = _aarq_aare_capture()
    code, out, err = decode(capsys, *KEYS, capture.hex())
    assert code == 0, err
    aarq, aare, get, response = (f["apdu"] for f in out["frames"])
    info = aarq["user_information"]
    assert info["type"] == "glo-initiate-request" and info["tag_verified"] is True
    assert info["system_title_from"] == "AARQ calling-AP-title"
    assert info["plain_apdu"]["type"] == "InitiateRequest"
    assert info["plain_apdu"]["dedicated_key"].startswith("***")
    assert aare["user_information"]["system_title"] == CLIENT_TITLE.lower()
    assert aare["user_information"]["plain_apdu"]["server_max_receive_pdu_size"] == 1024
    assert get["type"] == "ded-get-request" and get["key"] == "dedicated"
    assert get["plain_apdu"]["descriptor"]["obis"] == "0-0:1.0.0.255"
    assert response["type"] == "glo-get-response" and response["sender"] == "server"
    assert response["system_title_from"] == "AARE responding-AP-title"
    assert response["tag_verified"] is True and response["plain_apdu"]["result"] == 2325
    assert no_key_in(json.dumps(out) + err)
    # --show-secrets shows the LLS password / challenge, never a key.
    code, out, _ = decode(capsys, "--show-secrets", *KEYS, capture.hex())
    assert code == 0 and no_key_in(json.dumps(out))


def test_capture_title_wins_over_system_title_option(capsys):
    capture, _ = _aarq_aare_capture()
    code, out, _ = decode(capsys, *KEYS, "--system-title", "00" * 8, capture.hex())
    assert code == 0
    assert all(f["apdu"].get("system_title_from") != "--system-title" for f in out["frames"])


def test_ded_apdu_without_the_initiate_is_a_clear_error(capsys):
    capture, _ = _aarq_aare_capture()
    ded_frame = capture.split(b"\x7e\x7e")[2]  # frames 3 and 4: ded-get, glo-get-response
    code, out, _ = decode(capsys, *KEYS, "--system-title", SERVER_TITLE,
                          ("7e" + ded_frame.hex() + "7e"))
    assert code == 1
    assert "dedicated key" in out["hdlc"]["apdu"]["error"]


def test_a_new_aarq_forgets_the_dedicated_key_of_the_last_association(capsys):
    capture, _ = _aarq_aare_capture()
    frames = capture.split(b"\x7e\x7e")
    second = AARQ(ApplicationContext.LOGICAL_NAME_WITH_CIPHERING, calling_ap_title=H(SERVER_TITLE),
                  user_information=CONTEXT.encrypt(H("01000000065F1F0400001E1DFFFF"),
                                                   SecurityControl(), H(SERVER_TITLE), 5))
    aarq = encode_frame(Frame(FrameKind.I, HdlcAddress(1), HdlcAddress(16), True, 2, 2, False,
                              LLC_REQUEST + second.encode()))
    # AARQ with the dedicated key, ded-get (opened), a second AARQ without one, the ded-get again.
    replay = capture[: len(frames[0]) + 1] + b"\x7e" + frames[2] + b"\x7e" + aarq + b"\x7e" + (
        frames[2] + b"\x7e")
    code, out, _ = decode(capsys, *KEYS, replay.hex())
    assert code == 1
    first_get, last_get = out["frames"][1]["apdu"], out["frames"][3]["apdu"]
    assert first_get["plain_apdu"]["type"] == "GetRequestNormal"
    assert "dedicated key" in last_get["error"]


def test_wrapper_ports_tell_the_direction_of_general_ciphering_without_title(capsys):
    # An AARQ/AARE over the wrapper teaches the ports; general-glo-ciphering with an empty
    # system title then takes its sender's title from them (the server's here).
    aarq = AARQ(ApplicationContext.LOGICAL_NAME_WITH_CIPHERING, calling_ap_title=H(CLIENT_TITLE),
                user_information=CONTEXT.encrypt(H("01000000065F1F0400001E1DFFFF"),
                                                 SecurityControl(), H(CLIENT_TITLE), 1))
    aare = AARE(application_context=ApplicationContext.LOGICAL_NAME_WITH_CIPHERING,
                responding_ap_title=H(SERVER_TITLE),
                user_information=InitiateResponse(Conformance(0x00501F), 1024))
    general = bytearray(CONTEXT.encrypt(H("C401C100120915"), SecurityControl(), H(SERVER_TITLE),
                                        9, general=True))
    general = bytes(general[:1]) + b"\x00" + bytes(general[10:])  # empty system title
    capture = (encode_wrapper(aarq.encode(), 16, 1) + encode_wrapper(aare.encode(), 1, 16)
               + encode_wrapper(general, 1, 16))
    code, out, err = decode(capsys, *KEYS, capture.hex())
    assert code == 0, err
    last = out["pdus"][2]["apdu"]
    assert last["type"] == "general-glo-ciphering" and last["apdu_system_title"] is None
    assert last["sender"] == "server" and last["system_title"] == SERVER_TITLE.lower()
    assert last["plain_apdu"]["result"] == 2325


@pytest.mark.parametrize("args, named", [
    (["--block-key", "ABCD", "--auth-key", AK], "--block-key"),
    (["--block-key", EK, "--auth-key", "5A" * 15 + "ZZ"], "--auth-key"),
    (["--block-key", EK, "--auth-key", AK, "--system-title", "0102"], "--system-title"),
    (["--auth-key", AK], "--block-key"),
])
def test_bad_key_option_names_the_option_not_the_value(capsys, args, named):
    code, out, err = decode(capsys, *args, glo_get(Policy.AUTHENTICATED_ENCRYPTION))
    assert code == 2 and out is None and err.count("\n") == 1
    assert named in err
    assert "ABCD" not in err and "5a" * 15 not in err.lower() and no_key_in(err)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TB_DLMS_")}
    return subprocess.run([sys.executable, "-m", "tb_dlms.cli", *args], capture_output=True,
                          text=True, timeout=60, env={**base, **(env or {})}, check=False)


def test_keys_from_the_environment_and_a_bad_one_named_not_shown():
    done = _cli("decode", "--system-title", SERVER_TITLE, glo_get(Policy.AUTHENTICATED_ENCRYPTION),
                env={"TB_DLMS_BLOCK_KEY": EK, "TB_DLMS_AUTH_KEY": AK})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["apdu"]["plain_apdu"]["type"] == "GetRequestNormal"
    assert no_key_in(done.stdout + done.stderr)
    bad = _cli("decode", glo_get(Policy.AUTHENTICATED_ENCRYPTION),
               env={"TB_DLMS_BLOCK_KEY": EK[:-2], "TB_DLMS_AUTH_KEY": AK})
    assert bad.returncode == 2 and "TB_DLMS_BLOCK_KEY" in bad.stderr
    assert EK[:-2].lower() not in bad.stderr.lower() and no_key_in(bad.stderr)


# ---- a capture of our own client and simulator, decoded by a third process --------------------
SIM_BLOCK, SIM_AUTH = EK, AK  # the simulator's default test keys
CLIENT_SYSTEM_TITLE = "4142434445464748"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _simulated_read(level: str, wrapper: bool, *extra: str,
                    ) -> tuple[subprocess.CompletedProcess[str], str]:
    """``tb-dlms read --trace`` of the serial number from ``tb-dlms simulate``; the capture."""
    port = _free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "tb_dlms.cli", "simulate", "--base-port", str(port),
         "--auth", "hls-gmac", "--security", level, *(["--wrapper"] if wrapper else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sim.stdout is not None and "hls-gmac" in sim.stdout.readline()
        read = _cli("read", "--host", "127.0.0.1", "--port", str(port), "--timeout", "5",
                    *(["--wrapper"] if wrapper else []), "--auth", "hls-gmac",
                    "--system-title", CLIENT_SYSTEM_TITLE, "--security", level, "--trace",
                    *extra, "0-0:96.1.0/1/2", env={"TB_DLMS_BLOCK_KEY": SIM_BLOCK,
                                                   "TB_DLMS_AUTH_KEY": SIM_AUTH})
    finally:
        sim.terminate()
        sim.communicate(timeout=10)
    assert read.returncode == 0, read.stderr
    # Trace lines: "HH:MM:SS.mmmZ tx|rx 7e a0 ..."; the reads, concatenated, are the capture.
    capture = " ".join(line.split(" ", 2)[2] for line in read.stderr.splitlines()
                       if line.split(" ")[1:2] in (["tx"], ["rx"]))
    return read, capture


@pytest.mark.integration
@pytest.mark.parametrize("level", ["auth", "auth-enc"])
def test_dedicated_key_capture_decoded_end_to_end(level):
    """``tb-dlms read --dedicated-key``: the capture's AARQ brings the key (auth-enc even under
    authentication only), decode opens the ded- GET and its answer with it, and neither the
    read's trace nor the decode output shows it."""
    read, capture = _simulated_read(level, False, "--dedicated-key")
    done = _cli("decode", "--block-key", SIM_BLOCK, "--auth-key", SIM_AUTH, *capture.split())
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    apdus = [e["apdu"] for e in out["frames"] if "apdu" in e]
    (aarq,) = [a["user_information"] for a in apdus
               if isinstance(a.get("user_information"), dict)
               and a["user_information"].get("type") == "glo-initiate-request"]
    assert aarq["security"]["encryption"] is True  # the key never travels readable
    assert aarq["plain_apdu"]["dedicated_key"].startswith("***")
    by_type = {a["type"]: a for a in apdus if "security" in a}
    assert by_type["ded-get-request"]["key"] == "dedicated"
    assert by_type["ded-get-response"]["plain_apdu"]["result"] == "SIM00000000"
    # The key itself, recovered here from the capture with the global keys, is printed nowhere.
    raw = bytes.fromhex(capture.replace(" ", ""))
    at = raw.index(b"\x21\x30\x30")  # glo-initiate-request, auth-enc
    context = SecurityContext(GcmKey(H(SIM_BLOCK), H(SIM_AUTH)))
    plain = context.decrypt(raw[at:at + 2 + 0x30], H(CLIENT_SYSTEM_TITLE), required=None).apdu
    key = plain[3:19]
    assert plain[:3] == b"\x01\x01\x10" and len(key) == 16
    for text in (read.stderr, read.stdout, done.stdout, done.stderr):
        assert key.hex() not in text and key.hex(" ") not in text
        assert key.hex().upper() not in text and key.hex(" ").upper() not in text


@pytest.mark.integration
@pytest.mark.parametrize("level, wrapper", [("auth-enc", False), ("auth", False), ("enc", False),
                                            ("auth-enc", True)],
                         ids=["auth-enc", "auth", "enc", "wrapper-auth-enc"])
def test_simulator_capture_decoded_end_to_end(level, wrapper):
    read, capture = _simulated_read(level, wrapper)
    done = _cli("decode", "--block-key", SIM_BLOCK, "--auth-key", SIM_AUTH, *capture.split())
    assert done.returncode == 0, done.stderr
    assert no_key_in(done.stdout + done.stderr)
    out = json.loads(done.stdout)
    apdus = [e["apdu"] for e in out["pdus" if wrapper else "frames"] if "apdu" in e]
    ciphered = [a for a in apdus if "security" in a]
    ciphered += [a["user_information"] for a in apdus
                 if isinstance(a.get("user_information"), dict)
                 and "security" in a["user_information"]]
    # AARQ and AARE initiates, the HLS pass 3/4 actions, the GET and its response.
    assert len(ciphered) == 6
    expected = {"auth-enc": (True, True), "auth": (True, False), "enc": (False, True)}[level]
    for apdu in ciphered:
        assert "error" not in apdu, apdu
        security = apdu["security"]
        assert (security["authentication"], security["encryption"]) == expected
        assert apdu["tag_verified"] is (True if expected[0] else None)
    titles = {a["sender"]: a["system_title"] for a in ciphered}
    assert titles["client"] == CLIENT_SYSTEM_TITLE.lower() and titles["server"] != titles["client"]
    responses = [a["plain_apdu"] for a in ciphered if a["type"] == "glo-get-response"]
    assert responses[-1]["result"] == "SIM00000000"
