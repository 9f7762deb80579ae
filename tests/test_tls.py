"""wss://127.0.0.1: a per-install CA, name-constrained, whose private key exists nowhere on disk."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from agent_harness import AgentProcess, http_exchange, start_agent
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.sync.client import connect

from eimzo_agent.server.tls import TlsIdentityError, ensure_identity, retired_cas


@pytest.fixture
def agent(tmp_path: Path) -> AgentProcess:
    running = start_agent(tmp_path / "agent")
    yield running
    running.stop()


def tls_dir() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "eimzo-agent" / "tls"


def test_wss_serves_the_same_protocol_with_a_certificate_openssl_trusts(agent: AgentProcess) -> None:
    assert agent.wss_port
    ca = tls_dir() / "ca.crt.pem"
    check = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{agent.wss_port}", "-CAfile", str(ca),
         "-verify_return_error", "-verify_ip", "127.0.0.1", "-brief"],
        input=f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{agent.wss_port}\r\n\r\n",
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "Verification: OK" in check.stderr
    context = ssl.create_default_context(cafile=str(ca))
    url = f"wss://127.0.0.1:{agent.wss_port}/service/cryptapi"
    with connect(url, ssl=context, origin="https://localhost", compression=None) as ws:
        ws.send(json.dumps({"name": "version"}))
        assert json.loads(ws.recv(10))["major"] == "6"
    with connect(url.replace("127.0.0.1", "localhost"), ssl=context, origin="https://localhost") as ws:
        ws.send(json.dumps({"plugin": "pfx", "name": "list_disks"}))
        assert json.loads(ws.recv(10))["success"] is True
    # The Host guard holds on the TLS port too.
    raw = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", agent.wss_port), timeout=10) as sock, raw.wrap_socket(
        sock, server_hostname="127.0.0.1"
    ) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: evil.example:{agent.wss_port}\r\n\r\n".encode())
        assert tls.recv(100).startswith(b"HTTP/1.1 403")
    # And the plain port still answers.
    status, _, _ = http_exchange(agent.port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{agent.port}\r\n\r\n".encode())
    assert status == 200


def test_ca_is_name_constrained_and_its_key_is_nowhere_on_disk(agent: AgentProcess) -> None:
    ca = x509.load_pem_x509_certificate((tls_dir() / "ca.crt.pem").read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert set(constraints.value.permitted_subtrees) == {
        x509.IPAddress(ipaddress.IPv4Network("127.0.0.1/32")),
        x509.DNSName("localhost"),
    }
    assert constraints.value.excluded_subtrees is None
    leaf = x509.load_pem_x509_certificate((tls_dir() / "server.crt.pem").read_bytes())
    assert set(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == {
        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
        x509.DNSName("localhost"),
    }
    ca_public = ca.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    private_keys = 0
    roots = ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "HOME")
    files = {p.resolve() for root in roots for p in Path(os.environ[root]).rglob("*")}
    for path in sorted(files):
        if not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        data = path.read_bytes()
        if b"PRIVATE KEY-----" not in data:
            continue
        key = serialization.load_pem_private_key(data, None)
        private_keys += 1
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        assert public != ca_public, f"the CA private key is on disk: {path}"
    assert private_keys == 1  # just the server key
    assert oct((tls_dir() / "server.key.pem").stat().st_mode & 0o777) == "0o600"


def test_identity_is_kept_then_renewed_with_a_new_ca(tmp_path: Path) -> None:
    first = ensure_identity(tmp_path)
    again = ensure_identity(tmp_path)
    assert again.ca_certificate == first.ca_certificate
    later = first.server_certificate.not_valid_after_utc - dt.timedelta(days=10)
    renewed = ensure_identity(tmp_path, now=later)
    assert renewed.ca_certificate != first.ca_certificate
    assert renewed.server_certificate.not_valid_after_utc > first.server_certificate.not_valid_after_utc
    assert retired_cas(tmp_path) == [first.ca_certificate]


@pytest.mark.parametrize("damage", ["garbage leaf", "foreign key", "missing key", "leaf of another CA",
                                    "encrypted key"])
def test_a_damaged_identity_is_replaced_and_its_ca_retired(tmp_path: Path, damage: str) -> None:
    """Regression: a damaged identity silently got a new CA, and the old one stayed trusted in the stores."""
    first = ensure_identity(tmp_path)
    if damage == "garbage leaf":
        (tmp_path / "server.crt.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    elif damage == "foreign key":
        other = ec.generate_private_key(ec.SECP256R1())
        (tmp_path / "server.key.pem").write_bytes(other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    elif damage == "missing key":
        (tmp_path / "server.key.pem").unlink()
    elif damage == "encrypted key":  # regression: OpenSSL asked for its password on the terminal, start hung
        key = serialization.load_pem_private_key((tmp_path / "server.key.pem").read_bytes(), None)
        (tmp_path / "server.key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret")))
    else:
        elsewhere = ensure_identity(tmp_path / "elsewhere")
        for name in ("server.crt.pem", "server.key.pem"):
            (tmp_path / name).write_bytes((elsewhere.directory / name).read_bytes())
    renewed = ensure_identity(tmp_path)
    assert renewed.ca_certificate != first.ca_certificate
    assert retired_cas(tmp_path) == [first.ca_certificate]
    assert ensure_identity(tmp_path).ca_certificate == renewed.ca_certificate  # and it is kept from now on


def test_an_unparseable_ca_is_replaced(tmp_path: Path) -> None:
    first = ensure_identity(tmp_path)
    (tmp_path / "ca.crt.pem").write_bytes(b"")
    renewed = ensure_identity(tmp_path)
    assert renewed.server_certificate != first.server_certificate
    assert retired_cas(tmp_path) == []  # nothing left to retire: it was unreadable


@pytest.mark.parametrize("trouble", ["symlink loop", "folder in its place"])
def test_files_that_cannot_be_read_are_an_error_not_a_reason_to_start_over(tmp_path: Path, trouble: str) -> None:
    """Regression: any read error (a catch-all except) made a new CA over the files without retiring the old."""
    ensure_identity(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    ca = tmp_path / "ca.crt.pem"
    ca.unlink()
    if trouble == "symlink loop":
        ca.symlink_to(ca.name)
    else:
        ca.mkdir()
    with pytest.raises(TlsIdentityError, match="cannot read the TLS identity file"):
        ensure_identity(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == {
        name: data for name, data in before.items() if name != "ca.crt.pem"
    }
    assert ca.is_symlink() or ca.is_dir()
    assert not (tmp_path / "retired").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eimzo_agent", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_trust_install_into_nss_and_chromium_trusts_the_agent(agent: AgentProcess, tmp_path: Path) -> None:
    home = tmp_path / "browser-home"
    nssdb = home / ".pki" / "nssdb"
    installed = run_cli("trust", "install", "--nss-db", str(nssdb))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listing = subprocess.run(["certutil", "-L", "-d", f"sql:{nssdb}"], capture_output=True, text=True, check=True)
    assert "eimzo-agent local CA" in listing.stdout and "C,," in listing.stdout
    status = run_cli("trust", "status", "--nss-db", str(nssdb))
    assert f"trusted in NSS database {nssdb}" in status.stdout

    def chromium_sees_status_page(profile: Path) -> bool:
        env = dict(os.environ, HOME=str(home))
        page = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
             f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom",
             f"https://127.0.0.1:{agent.wss_port}/"],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )
        return "eimzo-agent" in page.stdout

    assert chromium_sees_status_page(tmp_path / "profile1")
    removed = run_cli("trust", "remove", "--nss-db", str(nssdb))
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert "eimzo-agent local CA" not in subprocess.run(
        ["certutil", "-L", "-d", f"sql:{nssdb}"], capture_output=True, text=True, check=True).stdout
    assert not chromium_sees_status_page(tmp_path / "profile2")  # untrusted again: Chromium shows an error page


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux script(1) for a terminal")
def test_an_encrypted_key_does_not_make_the_start_wait_for_a_password_on_the_terminal(tmp_path: Path) -> None:
    """Regression: with a terminal, OpenSSL asked "Enter PEM pass phrase:" and the agent's start waited for it."""
    first = ensure_identity(tmp_path / "tls")
    key = serialization.load_pem_private_key((tmp_path / "tls" / "server.key.pem").read_bytes(), None)
    (tmp_path / "tls" / "server.key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"x")))
    check = (f"from pathlib import Path; from eimzo_agent.server.tls import ensure_identity; "
             f"print('ca', ensure_identity(Path({str(tmp_path / 'tls')!r})).fingerprint())")
    # script(1) gives the check a terminal of its own, as a person's session has; stdin never answers.
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(check)}"
    try:
        done = subprocess.run(["script", "-qec", command, str(tmp_path / "typescript")], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the identity check waited: {exc.stdout!r}") from exc
    assert "pass phrase" not in done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    renewed = ensure_identity(tmp_path / "tls")
    assert f"ca {renewed.fingerprint()}" in done.stdout
    assert renewed.ca_der != first.ca_der  # the unusable identity was replaced
