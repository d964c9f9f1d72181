"""Simulated DLMS/COSEM meters: the object model a test server serves (no sockets, no framing).

``values`` holds the deterministic signals (the truth tests compare against), ``model`` the
COSEM objects of one meter and what they answer, ``profile`` its load profile computed on demand,
``meter_models`` the three meter models (poly, mono, ct; ``model_of(index, choice)``) and
``objects`` their object tables.
"""
