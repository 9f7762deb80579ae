"""`eimzo-agent config check|show`: the settings as the agent would take them, and where each value came from.

`check` is what an admin runs after editing a settings file (or before shipping one): it loads exactly what
`serve` loads — defaults, the user's file or `--config FILE`, the admin file, Group Policy, $EIMZO_AGENT_ASKPASS —
and reports what `serve` would refuse (errors, exit 2) or only log (warnings). `show` prints the effective values
with their source, so "why does the agent do X" is answered without reading four places by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from eimzo_agent.cli.common import add_config_option
from eimzo_agent.config import (
    COMMAND_LINE,
    DEFAULT_ORIGIN,
    ENV_ASKPASS_ORIGIN,
    POLICY_SOURCE,
    AgentConfig,
    ConfigError,
    load_config,
    machine_problems,
    settings_layout,
    system_config_path,
    user_config_path,
)


def add_parser(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser("config", help="check the settings files, or show the settings in effect")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="report errors (exit 2) and warnings in the settings serve would use")
    add_config_option(check)
    show = actions.add_parser("show", help="print every setting in effect and where it came from")
    add_config_option(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    return check(args.config) if args.action == "check" else show(args.config, as_json=args.json)


def check(config_file: Path | None) -> int:
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = machine_problems(config)
    for problem in problems:
        print(f"{'error' if problem.error else 'warning'}: {problem.message}", file=sys.stderr)
    if any(problem.error for problem in problems):
        return 2
    if config.sources:
        print(f"OK: settings from {', '.join(map(str, config.sources))}")
    else:
        looked = [path for path in (config_file or user_config_path(), system_config_path()) if str(path) != os.devnull]
        print(f"OK: built-in defaults only (no settings file: {', '.join(map(str, looked))})")
    return 0


def show(config_file: Path | None, *, as_json: bool) -> int:
    config = load_config(config_file)
    settings = effective_settings(config)
    if as_json:
        print(json.dumps({"files": [str(p) for p in config.sources], "settings": settings}, ensure_ascii=False,
                         indent=2))
        return 0
    print(f"# settings files read: {', '.join(map(str, config.sources)) or 'none'}")
    for section, keys in settings.items():
        print(f"\n[{section}]")
        for key, entry in keys.items():
            where = entry["from"] + (f" {entry['file']}" if "file" in entry else "")
            if entry["value"] is None:  # TOML has no null: shown as a comment, so the output stays valid TOML
                print(f"# {key} is not set  ({where})")
            else:
                print(f"{key} = {json.dumps(entry['value'], ensure_ascii=False)}  # {where}")
    return 0


def effective_settings(config: AgentConfig) -> dict[str, dict[str, dict[str, Any]]]:
    """{section: {key: {"value", "from" (default, user file, admin file, Group Policy, …), "file"?}}}."""
    admin_file = str(system_config_path())
    settings: dict[str, dict[str, dict[str, Any]]] = {}
    for section, key, attribute in settings_layout():
        origin = config.origins.get(f"{section}.{key}", DEFAULT_ORIGIN)
        entry: dict[str, Any] = {"value": _plain(getattr(config, attribute))}
        if origin == admin_file:
            entry.update({"from": "admin file", "file": origin})
        elif origin == POLICY_SOURCE:
            entry["from"] = f"Group Policy ({POLICY_SOURCE})"
        elif origin in (DEFAULT_ORIGIN, ENV_ASKPASS_ORIGIN) or origin.startswith(COMMAND_LINE):
            entry["from"] = origin
        else:
            entry.update({"from": "user file", "file": origin})
        settings.setdefault(section, {})[key] = entry
    return settings


def _plain(value: Any) -> Any:
    """A setting's value as JSON can hold it (folders as text)."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value
