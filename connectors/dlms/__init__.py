"""tb_dlms: a DLMS/COSEM connector for the ThingsBoard IoT Gateway.

The folder ``connectors/dlms`` is the import package ``tb_dlms``: ``connectors/dlms/session/
machine.py`` is ``tb_dlms.session.machine``. Two top-level folders join it when installed
(setup.py): ``converters/`` as ``tb_dlms.converters`` and ``config/`` (package data) as
``tb_dlms.config``; nothing generic such as ``connectors`` lands in site-packages. Inside the
package, modules import each other relatively (tests/test_layers.py), so the tree type-checks as
it stands (scripts/lint.sh); users, tests and the gateway's loader files import ``tb_dlms.``.
"""

__version__ = "0.1.0"
