"""What several sub-commands share: key-source options, date arguments, printing errors."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path


def add_key_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-root",
        action="append",
        metavar="DIR",
        help="also look for keys in DIR (its root and its DSKEYS folder); repeatable",
    )
    parser.add_argument(
        "--pkcs11-module",
        action="append",
        metavar="PATH",
        help="use the PKCS#11 module PATH for tokens (instead of the OpenSC/vendor modules found on disk); "
        "repeatable",
    )
    add_config_option(parser)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", type=Path, help="settings file to use instead of the user's")


def date_argument(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return value if value.tzinfo else value.astimezone()
