"""Shared by the large-document benches: an agent with a freshly minted key whose password it remembers.

The askpass program answers the one question with "remember" for 6 hours, so every signature after the first is the
document's way through the agent, not the password question. Everything lives in the caller's temporary folder.
"""

from __future__ import annotations

from pathlib import Path

from agent_harness import PASSWORD, AgentProcess, make_askpass, mint, start_agent


def start_remembering_agent(tmp: Path, alg: str = "ozdst") -> tuple[AgentProcess, Path]:
    """A running agent (log level WARNING) and its one key file, minted in `tmp`."""
    pfx = mint(tmp / "ca", tmp / "flash" / "DSKEYS", alg, "--cn", f"BENCH {alg.upper()}", "--pinfl", "31234567890125")
    askpass = make_askpass(tmp)
    askpass.answer(f"{PASSWORD}\nremember=21600")
    agent = start_agent(tmp / "agent", "--key-root", str(tmp / "flash"), "--askpass", str(askpass.program),
                        "--log-level", "WARNING")
    return agent, pfx
