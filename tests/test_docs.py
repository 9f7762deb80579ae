"""Docs that must stay true: the compatibility table lists every function the agent answers."""

from __future__ import annotations

import re
from pathlib import Path

from eimzo_agent.agent import build_agent
from eimzo_agent.config import AgentConfig
from eimzo_agent.protocol.calls import MAIN
from eimzo_agent.ui.prompter import NoPrompter

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_compat_table_lists_every_registered_function_as_done() -> None:
    text = (DOCS / "compat.md").read_text()
    agent = build_agent(AgentConfig(scan_system_locations=False), prompter=NoPrompter())
    for function in agent.registry:
        section = "main (no plugin name)" if function.plugin == MAIN else function.plugin
        assert f"## {section}" in text or f"## {section.split()[0]}" in text, section
        row = re.search(rf"^\|\s*[^|]*\b{re.escape(function.name)}\b[^|]*\|\s*done\s*\|", text, re.MULTILINE)
        assert row, f"docs/compat.md does not list {function.plugin or 'main'}.{function.name} as done"
        # Our own additions are documented as such, under a heading that says so; E-IMZO's never are.
        ours = f"### {function.plugin} (eimzo-agent extension)" in text
        assert ours == function.extension, f"{function.full_name}: extension={function.extension}"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_second() -> None:
    root = DOCS.parent
    readme = (root / "README.md").read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in readme[:12] if line.startswith("bash ")]
    assert commands == ["bash scripts/run.sh --demo", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (root / ".ci" / "run").read_text().splitlines()
