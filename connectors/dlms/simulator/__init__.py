"""Simulated DLMS/COSEM meters: the object model a test server serves (no sockets, no framing).

``values`` holds the deterministic signals (the truth tests compare against), ``model`` the
COSEM objects of one meter and what they answer, ``profile`` its load profile computed on demand.
"""
