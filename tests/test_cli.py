from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from agent_harness import mint

from eimzo_agent import __version__


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eimzo_agent", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_version() -> None:
    result = run("version")
    assert result.returncode == 0 and result.stdout.strip() == f"eimzo-agent {__version__} (E-IMZO 6.4.7 compatible)"


def test_keys_lists_minted_keys_with_owner_fields(tmp_path: Path) -> None:
    root = tmp_path / "flash"
    person = mint(tmp_path / "ca", root / "DSKEYS", "rsa2048", "--cn", "ALIYEV VALI", "--pinfl", "31234567890123",
                  "--tin", "512345678")
    company = mint(tmp_path / "ca", root, "p256", "--cn", "KARIMOVA NODIRA", "--org", "Yangi MChJ",
                   "--org-tin", "301234567", "--pinfl", "41234567890123")
    assert person.name == "DS312345678901230001.pfx" and company.parent == root
    config = tmp_path / "c.toml"
    config.write_text("[keys]\nscan_system_locations = false\n")
    result = run("keys", "--json", "--key-root", str(root), "--config", str(config))
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["disks"] == [f"{root}/"]
    by_name = {k["name"]: k for k in listing["keys"]}
    p = by_name[person.stem]
    assert (p["path"], p["pinfl"], p["tin"], p["legal_entity"], p["expired"]) == ("DSKEYS", "31234567890123",
                                                                                   "512345678", False, False)
    c = by_name[company.stem]
    # Names from the (lower-cased) alias are shown upper-case, as portals show them; the alias stays as stored.
    assert (c["path"], c["org_tin"], c["org"], c["legal_entity"]) == ("", "301234567", "YANGI MCHJ", True)
    text = run("keys", "--key-root", str(root), "--config", str(config))
    assert "ALIYEV VALI" in text.stdout.upper() and str(person) in text.stdout


def test_mint_key_refuses_bad_input(tmp_path: Path) -> None:
    result = run("dev", "mint-key", "--out", str(tmp_path), "--password", "x", "--cn", "X", "--pinfl", "123",
                 "--ca", str(tmp_path / "ca"))
    assert result.returncode == 1 and "pinfl" in result.stderr.lower()
    assert not list(tmp_path.glob("*.pfx"))


def test_serve_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text("[keys]\nscan_system_locations = false\n")
        result = run("serve", "--ws-port", str(port), "--no-tray", "--config", str(config))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "already running" in result.stderr


def test_bad_config_file_stops_serve_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[server]\nws_port = 'many'\n")
    result = run("serve", "--config", str(config))
    assert result.returncode == 2 and "server.ws_port has the wrong type" in result.stderr
