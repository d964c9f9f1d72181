"""Uplink converters (installed as ``tb_dlms.converters``): readings in, ConvertedData out."""
