"""Sub-commands of ``tb-dlms``: one module each, with ``register(subparsers)``.

A module registers its parser and sets ``func`` (args -> exit code) as the default. Listed here so
the order of ``tb-dlms --help`` is stable.
"""

COMMANDS = ("decode", "read", "scan", "listen", "simulate", "demo", "install")
