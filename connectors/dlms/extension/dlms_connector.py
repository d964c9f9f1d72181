# Written by `tb-dlms install`: the ThingsBoard IoT Gateway loader for the DLMS/COSEM connector.
# The gateway executes this file on its own (no package context): keep it to one absolute import.
# The code lives in the installed `tb_dlms` package; upgrade it with pip, not here.
from tb_dlms.connector.dlms_connector import DlmsConnector

__all__ = ["DlmsConnector"]
