"""Templates of the thin loader files that ``tb-dlms install`` copies into a gateway extensions folder.

The gateway's ``TBModuleLoader`` executes every top-level ``.py`` file of ``extensions/<type>/`` by
path, with no package around it: relative imports fail and anything done at import time runs for
every class lookup. So the files copied there hold one absolute import each, from the installed
``tb_dlms`` package. They are kept here as real modules (installed with the package, linted like
the rest) and copied byte for byte; ``LOADER_FILES`` maps each file to the class it exposes.
"""

from __future__ import annotations

LOADER_FILES = {
    "dlms_connector.py": "DlmsConnector",
    "dlms_converter.py": "DlmsUplinkConverter",
}

# First line of every template: lets ``tb-dlms install`` tell its own files from a user's.
MARKER = "# Written by `tb-dlms install`"
