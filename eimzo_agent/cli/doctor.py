"""`eimzo-agent doctor [--site URL] [--json]`: what stands between a portal and a signature, and how to fix it.

Exit status: 0 nothing blocks, 1 something blocks, 2 bad arguments. `--json` prints one object for inventory
scripts: `ok`, the ids of the blocking checks, and every check with its id, status, message, fix and details.
System-wide files (browser policies, packages' autostart) are read under $EIMZO_AGENT_SYSTEM_ROOT when it is set:
for tests, and for checking a system image.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from eimzo_agent import i18n
from eimzo_agent.cli.common import add_config_option
from eimzo_agent.deploy.places import ENV_SYSTEM_ROOT

if TYPE_CHECKING:
    from eimzo_agent.deploy.doctor import Report

# The checks (browsers, ports, an HTTP and WebSocket probe) are imported when the doctor runs: every CLI start
# builds this parser, and `serve` would otherwise carry them in memory for its whole life.


def add_parser(commands: argparse._SubParsersAction) -> None:
    doctor = commands.add_parser(
        "doctor", help="find what stops portals from signing, and how to fix it",
        description="Check the agent, its ports, the wss certificate, autostart, key folders, settings and (with "
                    "--site) the browsers' policies for a portal. Exit status 1 when something blocks signing. "
                    f"System-wide files are read under ${ENV_SYSTEM_ROOT} when set (tests, system images).")
    doctor.add_argument("--site", metavar="URL", help="also check this portal, e.g. https://my.gov.uz")
    doctor.add_argument("--json", action="store_true", help="one JSON object, for inventory scripts")
    add_config_option(doctor)


def run(args: argparse.Namespace) -> int:
    from eimzo_agent.deploy.browsers import origin_of
    from eimzo_agent.deploy.doctor import diagnose

    site = None
    if args.site is not None:
        try:
            site = origin_of(args.site)
        except ValueError:
            lang = i18n.language_from_environment()
            print(f"eimzo-agent: {i18n.text(lang, 'doctor', 'site_invalid', site=args.site)}", file=sys.stderr)
            return 2
    report = diagnose(args.config, site)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print_report(report)
    return 1 if report.blocking else 0


def print_report(report: Report) -> None:
    from eimzo_agent.deploy.doctor import Status

    marks = {Status.OK: "status_ok", Status.WARNING: "status_warning", Status.BLOCKING: "status_blocking"}

    def t(key: str, **params: object) -> str:
        return i18n.text(report.language, "doctor", key, **params)

    width = max(len(t(key)) for key in marks.values())
    for check in report.checks:
        print(f"[{t(marks[check.status]):^{width}}] {check.message}")
        if check.fix and check.status is not Status.OK:
            print(f"{'':{width + 3}}{t('fix', fix=check.fix)}")
    print()
    print(t("summary_blocking", count=len(report.blocking)) if report.blocking else t("summary_ok"))
