"""An idle agent does not load `cryptography` (its Rust extension alone is 8 MB resident), and loads it when needed.

Issue 14 keeps the idle RSS at or under 45 MB (bench/bench_large.py, docs/performance.md); what kept it over was
`cryptography`, imported at start by the modules that use it and by the TLS identity check. They now import it on
first use (eimzo_agent/lazy_module.py), the identity is checked with the ssl module and made in a helper process.
Checked here on the running agent's own memory map: nothing is timed or weighed.
"""

from __future__ import annotations

import base64
import importlib
import sys
import threading
from pathlib import Path

import pytest
from agent_harness import PASSWORD, make_askpass, mint, start_agent

from eimzo_agent import lazy_module as lazy
from eimzo_agent.server import tls

RUST_EXTENSION = "cryptography/hazmat/bindings/_rust"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/maps")


def cryptography_loaded(pid: int) -> bool:
    return RUST_EXTENSION in Path(f"/proc/{pid}/maps").read_text()


def test_an_idle_agent_has_not_loaded_cryptography_until_a_key_is_opened(tmp_path: Path) -> None:
    flash = tmp_path / "flash" / "DSKEYS"
    keys = {alg: mint(tmp_path / "ca", flash, alg, "--cn", f"IDLE {alg}") for alg in ("ozdst", "p256", "rsa2048")}
    askpass = make_askpass(tmp_path)
    askpass.answer(PASSWORD)
    # A fresh home: the agent makes its TLS identity on this start (in a helper process) and serves wss:// with it.
    agent = start_agent(tmp_path / "agent", "--key-root", str(flash.parent), "--askpass", str(askpass.program))
    try:
        assert agent.wss_port is not None
        for _ in range(20):
            agent.call("version")
        listed = agent.call("list_all_certificates", plugin="pfx")["certificates"]
        assert {entry["name"] for entry in listed} == {pfx.stem for pfx in keys.values()}
        assert not cryptography_loaded(agent.process.pid), "an agent that only listed keys loaded cryptography"

        # Opening a key file needs it (PKCS#12 bags are 3DES-encrypted, by `cryptography`), and gets it: the check
        # above can tell the two states apart.
        document = base64.b64encode(b"idle agent").decode()
        for alg in ("ozdst", "p256"):
            entry = next(entry for entry in listed if entry["name"] == keys[alg].stem)
            key_id = agent.call("load_key", entry["disk"], entry["path"], entry["name"], entry["alias"],
                                plugin="pfx")["keyId"]
            assert agent.call("create_pkcs7", document, key_id, "no", plugin="pkcs7")["success"]
        assert cryptography_loaded(agent.process.pid)
    finally:
        agent.stop()


def test_a_lazy_module_is_imported_once_at_its_first_attribute_even_from_many_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lazy_probe.py").write_text("import time\ntime.sleep(0.2)\nIMPORTS = []\nIMPORTS.append(1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_probe", raising=False)
    probe = lazy.lazy_module("lazy_probe")
    assert "lazy_probe" not in sys.modules
    assert "not imported yet" in repr(probe)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(probe.IMPORTS)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and all(item is seen[0] for item in seen)
    assert seen[0] == [1]  # the module body ran once
    assert probe.IMPORTS is importlib.import_module("lazy_probe").IMPORTS
    with pytest.raises(AttributeError):
        _ = probe.no_such_name


@pytest.mark.parametrize("helper", ["frozen build", "helper fails"])
def test_the_identity_is_made_in_process_when_no_helper_process_can_make_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: str) -> None:
    if helper == "frozen build":
        monkeypatch.setattr(sys, "frozen", True, raising=False)
    else:
        monkeypatch.setattr(sys, "executable", "/bin/false")
    made = tls.ensure_identity(tmp_path)
    assert made.ssl_context() is not None
    again = tls.ensure_identity(tmp_path)
    assert again.ca_der == made.ca_der and again.server_der == made.server_der  # checked and kept


def test_the_helper_process_makes_the_identity_the_check_accepts(tmp_path: Path) -> None:
    made = tls.ensure_identity(tmp_path)
    assert made.server_certificate.not_valid_after_utc == made.server_not_after
    assert made.fingerprint() == made.ca_certificate.fingerprint(
        importlib.import_module("cryptography.hazmat.primitives.hashes").SHA256()).hex(":").upper()
    assert tls.ensure_identity(tmp_path).ca_der == made.ca_der
