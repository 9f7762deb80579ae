"""eimzo-agent: a local signing agent for Uzbek ERI keys, wire-compatible with E-IMZO."""

__version__ = "0.1.0"

#: The E-IMZO release whose wire behaviour we reproduce; clients compare major*100+minor against thresholds.
EIMZO_COMPAT_VERSION = ("6", "4", "7")
