"""tb_dlms: a DLMS/COSEM connector for the ThingsBoard IoT Gateway.

The source folder ``connectors/dlms`` is installed as the import package ``tb_dlms`` (see setup.py),
so nothing generic such as ``connectors`` lands in site-packages.
"""

__version__ = "0.1.0"
