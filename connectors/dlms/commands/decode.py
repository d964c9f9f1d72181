"""``tb-dlms decode HEX...``: explain a captured frame or APDU as JSON, deciphering it with keys.

Exit codes: 0 explained, 1 some ciphered APDU could not be deciphered or its plaintext decoded
(its entry has an ``error``), 2 the capture itself is malformed or an option is bad (one line
on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from ..protocol.errors import DlmsError
from .keys import AUTH_KEY_ENV, BLOCK_KEY_ENV, hex_option, key_option

if TYPE_CHECKING:
    from ..capture_security import CaptureKeys


_EPILOG = f"""\
Ciphered APDUs (security suite 0, and suite id 1 which is the same AES-GCM-128) are
deciphered with --block-key and --auth-key, or {BLOCK_KEY_ENV} and {AUTH_KEY_ENV} (command
lines show up in process lists and shell histories). Each APDU is opened with its sender's
system title: the client's (AARQ calling-AP-title) for requests, the server's (AARE
responding-AP-title) for responses and notifications, the one inside general-glo-ciphering
where it is carried. The direction comes from the APDU tag, the HDLC LLC header or the
wrapper ports. --system-title is the sender's title for the APDUs whose sender's title the
capture does not give (no AARQ/AARE for that side): the meter's to read responses and
pushes, the client's to read requests. A dedicated key sent in a deciphered InitiateRequest
opens the ded- APDUs after it.

Output: per ciphered APDU its security header (suite, authentication, encryption, key set,
invocation counter), the system title used, tag_verified (true, false, or null when encryption
only carries no tag) and plain_apdu, the deciphered APDU decoded; or an error.
Keys are never printed; LLS passwords are masked unless --show-secrets.
Exit status: 0 explained, 1 some ciphered APDU not deciphered (its entry says why),
2 malformed capture or bad option."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "decode", help="explain a captured HDLC frame, wrapper PDU or APDU (deciphering it)",
        description="Explain captured HDLC frames, wrapper PDUs or an APDU as JSON.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hex", nargs="+", help="hex bytes; spaces allowed (7E A0 07 ...)")
    parser.add_argument("--show-secrets", action="store_true",
                        help="print LLS passwords (keys are never printed)")
    parser.add_argument("--block-key", metavar="HEX32",
                        help=f"global unicast block cipher key (or set {BLOCK_KEY_ENV})")
    parser.add_argument("--auth-key", metavar="HEX32",
                        help=f"authentication key (or set {AUTH_KEY_ENV}); without it only "
                        "encryption-only APDUs are deciphered")
    parser.add_argument("--system-title", metavar="HEX16",
                        help="sender system title for ciphered APDUs whose sender's title is "
                        "not in the capture (no AARQ/AARE for that side)")
    parser.set_defaults(func=run)


def _keys(args: argparse.Namespace) -> CaptureKeys | None:
    from ..capture_security import CaptureKeys

    block = key_option(args.block_key, "--block-key", BLOCK_KEY_ENV)
    auth = key_option(args.auth_key, "--auth-key", AUTH_KEY_ENV)
    title = (None if args.system_title is None
             else hex_option(args.system_title, "--system-title", 8))
    if block is None:
        if auth is not None or title is not None:
            raise ValueError(f"--block-key (or {BLOCK_KEY_ENV}) is needed to decipher")
        return None
    return CaptureKeys(block, auth, title)


def run(args: argparse.Namespace) -> int:
    from ..capture import describe, parse_hex
    from ..capture_security import CaptureState

    try:
        keys = _keys(args)
    except ValueError as exc:
        print(f"tb-dlms decode: {exc}", file=sys.stderr)
        return 2
    state = CaptureState(keys)
    try:
        result = describe(parse_hex(args.hex), show_secrets=args.show_secrets, state=state)
    except DlmsError as exc:
        print(f"tb-dlms decode: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 1 if state.failures else 0
