"""Packaging: the repository's top-level folders map onto one import package, ``tb_dlms``.

connectors/dlms -> tb_dlms              (protocol core, transports, engine, connector, CLI)
converters      -> tb_dlms.converters   (readings -> ThingsBoard ConvertedData)
config          -> tb_dlms.config       (example dlms.json, JSON schema: package data)
"""

from setuptools import find_packages, setup

PACKAGES = {"tb_dlms": "connectors/dlms"}
PACKAGES.update(
    {f"tb_dlms.{sub}": "connectors/dlms/" + sub.replace(".", "/") for sub in find_packages("connectors/dlms")}
)
PACKAGES.update({"tb_dlms.converters": "converters", "tb_dlms.config": "config"})

setup(
    name="tb-dlms-connector",
    version="0.1.0",
    description="DLMS/COSEM (IEC 62056) connector for the ThingsBoard IoT Gateway",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=list(PACKAGES),
    package_dir=PACKAGES,
    package_data={"tb_dlms.config": ["*.json"]},
    install_requires=[
        "pyserial>=3.5",
        "pyyaml>=6",
        "cryptography>=41",
    ],
    extras_require={
        "gateway": ["thingsboard-gateway==3.8.5", "tb-mqtt-client>=1.13"],
        # gurux-dlms is GPLv2: a test-time interoperability peer only, never imported by tb_dlms.
        "test": [
            "pytest>=7",
            "pytest-timeout>=2",
            "hypothesis>=6",
            "gurux-dlms>=1.0.200",
            "ruff==0.17.6",  # pinned: lint rules change between releases
            "mypy==2.4.1",
            # Checks config/dlms.json against config/dlms.schema.json (tests only).
            "jsonschema>=4",
            # Checks docker/*compose*.yml without a Docker engine: its vendored compose-spec
            # schema (tests/integration/compose_check.py), YAML read with PyYAML.
            "check-jsonschema>=0.28",
            "PyYAML>=6",
        ],
    },
    entry_points={"console_scripts": ["tb-dlms = tb_dlms.cli:main"]},
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: System :: Networking :: Monitoring",
    ],
)
