"""The gateway connector: dlms.json loading, RPCs, health/alarm publishing, the Connector class.

``config``, ``model``, ``values``, ``rpc`` and ``alarms`` import nothing from the gateway (the CLI
and the tests use them alone); only ``dlms_connector`` does, and ``tb_dlms.converters.uplink``.
"""
