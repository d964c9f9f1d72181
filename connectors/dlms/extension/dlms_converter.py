# Written by `tb-dlms install`: the ThingsBoard IoT Gateway loader for the DLMS uplink converter.
# The gateway executes this file on its own (no package context): keep it to one absolute import.
# The code lives in the installed `tb_dlms` package; upgrade it with pip, not here.
from tb_dlms.converters.uplink import DlmsUplinkConverter

__all__ = ["DlmsUplinkConverter"]
