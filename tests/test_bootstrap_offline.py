"""README command 1, `bash scripts/run.sh --demo`: installs once, then starts with no network (issue 15).

A fresh clone of the checkout is bootstrapped once with the network (and without a C compiler, as on a plain
Debian 12 desktop); then run.sh starts inside a network namespace with nothing but loopback (`unshare -n`; root,
as in CI, or an unprivileged user namespace) and a real WebSocket client in the same namespace must get the demo
keys from it. Before, run.sh ran pip at every start, which fails there ("No matching distribution found for
setuptools>=68"). Everything goes into tmp_path: the clone, its .venv, pip's cache; the checkout is only read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent

#: Runs inside the namespace: starts README command 1, waits until the agent answers (or run.sh gives up), asks
#: for the keys the way the demo portal does, stops the agent. Prints one JSON line.
DRIVER = """
import json, subprocess, sys, time
from websockets.sync.client import connect

log = open(sys.argv[1], "w")
agent = subprocess.Popen(["bash", "scripts/run.sh", "--demo", "--no-tray"], stdout=log, stderr=subprocess.STDOUT)
try:
    deadline = time.monotonic() + 60
    while True:
        if agent.poll() is not None:
            print(json.dumps({"exited": agent.returncode}))
            sys.exit(1)
        try:
            ws = connect("ws://127.0.0.1:64646/service/cryptapi", origin="http://127.0.0.1:64646", open_timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with ws:
        ws.send(json.dumps({"plugin": "pfx", "name": "list_all_certificates", "arguments": []}))
        print(json.dumps({"reply": json.loads(ws.recv(30))}))
finally:
    agent.terminate()
    agent.wait(15)
"""


def fresh_clone(dest: Path) -> None:
    """`git clone` of the checkout, plus its edits not committed yet, so the scripts under test are the ones on disk."""
    git = ["git", "-C", str(CHECKOUT)]
    subprocess.run(["git", "clone", "--quiet", "--shared", str(CHECKOUT), str(dest)], check=True, timeout=60)
    changed = subprocess.run([*git, "ls-files", "-z", "--modified", "--others", "--exclude-standard"],
                             capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, changed):
        source, target = CHECKOUT / name, dest / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        else:  # deleted in the working tree
            target.unlink(missing_ok=True)


def bootstrap(clone: Path, env: dict[str, str]) -> str:
    result = subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=clone, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_run_sh_installs_once_then_starts_offline(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    fresh_clone(clone)
    # No byte-compiling of the installed packages: it is most of pip's work here, and Python does it when needed.
    env = dict(os.environ, PIP_CACHE_DIR=str(tmp_path / "pip-cache"), PIP_NO_INPUT="1", PIP_NO_COMPILE="1")

    # First run, with the network and no C compiler: the agent alone needs none (binary wheels, python-pkcs11 too;
    # the O'zDSt hash's C extension is optional, the pure-Python hash takes over) and gets no pyscard (an sdist).
    started = time.monotonic()
    assert "installing eimzo-agent" in bootstrap(clone, dict(env, CC="/nonexistent/cc"))
    first_install = time.monotonic() - started
    python = str(clone / ".venv" / "bin" / "python")
    probe = subprocess.run(
        [python, "-c", "import importlib.util as u, pkcs11; from eimzo_agent.crypto import gost94; "
                       "print(u.find_spec('smartcard') is None, gost94.BACKEND)"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    assert probe.stdout.split() == ["True", "python"], probe.stdout

    # README command 1 again, with no network at all.
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--net"]
    log = tmp_path / "run.log"
    started = time.monotonic()
    result = subprocess.run(
        [*unshare, "sh", "-c", 'ip link set lo up && exec "$0" -c "$1" "$2"', sys.executable, DRIVER, str(log)],
        cwd=clone, env=env, capture_output=True, text=True, timeout=180, check=False)
    offline_start = time.monotonic() - started
    output = log.read_text(errors="replace") if log.exists() else ""
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\nrun.sh said:\n{output}"
    reply = json.loads(result.stdout.splitlines()[-1])["reply"]
    assert reply["success"] is True, reply
    assert reply["certificates"], reply  # the demo keys --demo made
    assert "installing" not in output, output

    # A dependency change (pyproject.toml) is picked up by the next start: it installs again — here with nowhere to
    # get packages from, so it fails the way every offline start failed before.
    with (clone / "pyproject.toml").open("a") as pyproject:
        pyproject.write("# changed\n")
    (tmp_path / "no-wheels").mkdir()
    result = subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=clone, capture_output=True, text=True, timeout=120,
                            env=dict(env, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path / "no-wheels")), check=False)
    assert result.returncode != 0 and "installing eimzo-agent" in result.stdout, result.stdout + result.stderr
    print(f"first install {first_install:.1f} s, offline start and answer {offline_start:.1f} s")
