"""Two `eimzo-agent portal serve` nodes sharing one Redis, behind the nginx config docs/portal.md gives.

All real: Debian's redis-server and nginx (private instances in tmp_path on free ports, see portal_services.py),
the server processes through the real CLI, HTTPS from the client to nginx, HTTP on to the nodes. What a cluster
must do: a challenge issued through one node is consumed by the other; a replay is refused (-20) on either; a dead
Redis is a quick, clear 503, not a hung login.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from portal_harness import PortalKey, PortalLaunch, PortalProcess, launch_portal, mint_key
from portal_services import NginxServer, RedisServer, free_port, start_nginx, start_redis

REPO = Path(__file__).resolve().parents[1]
SITE = "portal.example.uz"
PINFL = "31234567890199"


def documented_nginx_config() -> str:
    """The ```nginx block of docs/portal.md's "nginx in front" section: the one admins copy is the one tested."""
    text = (REPO / "docs" / "portal.md").read_text()
    section = text.split("## nginx in front", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```nginx\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "docs/portal.md's nginx section should hold exactly one ```nginx block"
    return blocks[0]


@dataclass
class Cluster:
    redis: RedisServer
    nodes: list[PortalProcess]
    nginx: NginxServer
    public_port: int
    internal_port: int
    key: PortalKey

    def upstream_log(self) -> list[str]:
        """The node (host:port) nginx sent each request to, in order."""
        return [line.split()[-1] for line in (self.nginx.folder / "upstream.log").read_text().splitlines()]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SITE)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(SITE)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "site.crt", folder / "site.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def nginx_for_test(nodes: list[PortalProcess], public_port: int, internal_port: int, cert: Path, key: Path) -> str:
    """The documented config with this machine's addresses put in; nothing else changed."""
    config = documented_nginx_config()
    node_lines = re.findall(r"server 10\.0\.0\.1[12]:8080;", config)
    assert len(node_lines) == 2, config
    for line, node in zip(node_lines, nodes, strict=True):
        config = config.replace(line, f"server 127.0.0.1:{node.port};", 1)
    replacements = {
        "listen 443 ssl;": f"listen 127.0.0.1:{public_port} ssl;",
        "listen 10.0.0.10:8080;": f"listen 127.0.0.1:{internal_port};",
        "/etc/ssl/certs/portal.example.uz.pem": str(cert),
        "/etc/ssl/private/portal.example.uz.key": str(key),
        "http://127.0.0.1:8000": f"http://127.0.0.1:{free_port()}",  # the portal's own app: not in this test
    }
    for old, new in replacements.items():
        assert old in config, old
        config = config.replace(old, new)
    # Ours, outside the documented block: which node served each request.
    return ("log_format upstream '$request_uri $upstream_addr';\n"
            f"access_log {cert.parent}/nginx/upstream.log upstream;\n{config}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    key = mint_key(tmp / "ca", tmp / "keys", "p256", PINFL)
    redis = start_redis(tmp / "redis")
    nodes: list[PortalProcess] = []
    launches: list[PortalLaunch] = []
    nginx = None
    try:
        for index in range(2):  # started together, waited for in turn: both nodes start in parallel
            launches.append(launch_portal(tmp / f"node{index}", "--redis", redis.url, "--trust-anchor",
                                          str(tmp / "ca" / "ca.crt.pem"), "--revocation", "off"))
        nodes = [launch.wait() for launch in launches]
        cert, cert_key = _self_signed(tmp)
        public_port, internal_port = free_port(), free_port()
        config = nginx_for_test(nodes, public_port, internal_port, cert, cert_key)
        nginx = start_nginx(tmp / "nginx", config, public_port)
        yield Cluster(redis, nodes, nginx, public_port, internal_port, key)
    finally:
        if nginx is not None:
            nginx.stop()
        for node in nodes:
            node.stop()
        for launch in launches:  # one that never became ready
            if launch.process.poll() is None:
                launch.process.kill()
                launch.process.wait()
        redis.stop()


def _request(url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
             timeout: float = 15) -> tuple[int, dict[str, object], float]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as reply:
            status, raw = reply.status, reply.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    elapsed = time.monotonic() - start
    try:
        return status, json.loads(raw), elapsed
    except ValueError:
        return status, {"not JSON": raw.decode(errors="replace")}, elapsed


def browser_challenge(cluster: Cluster) -> str:
    """What the page does: GET /frontend/challenge on the site (through nginx, over HTTPS)."""
    status, reply, _ = _request(f"https://127.0.0.1:{cluster.public_port}/frontend/challenge?_uc={time.time_ns()}",
                                headers={"Host": f"{SITE}:{cluster.public_port}"})
    assert status == 200 and reply["status"] == 1, reply
    return str(reply["challenge"])


def signed(cluster: Cluster, challenge: str) -> bytes:
    """The agent's create_pkcs7(base64(challenge)): an attached CMS whose content is the challenge's bytes."""
    return base64.b64encode(cluster.key.sign(challenge.encode()))


def backend_auth(port: int, body: bytes) -> tuple[int, dict[str, object], float]:
    """What the portal's backend does: POST the PKCS#7 to /backend/auth with the site's Host and the user's IP."""
    return _request(f"http://127.0.0.1:{port}/backend/auth", body=body,
                    headers={"Host": SITE, "X-Real-IP": "127.0.0.1", "Content-Type": "application/octet-stream"})


def test_challenge_from_one_node_is_consumed_by_the_other(cluster: Cluster) -> None:
    challenges = [browser_challenge(cluster) for _ in range(4)]
    issuers = cluster.upstream_log()[-4:]
    node_addresses = {f"127.0.0.1:{node.port}": node for node in cluster.nodes}
    assert set(issuers) == set(node_addresses), issuers  # nginx spread them over both nodes
    # nginx passed Host and X-Forwarded-Proto on: the challenge names the site's https origin.
    assert all(c.startswith(f"eimzo-login v1 origin=https://{SITE} ") for c in challenges), challenges
    for challenge, issuer in zip(challenges, issuers, strict=True):
        other = next(node for address, node in node_addresses.items() if address != issuer)
        status, reply, _ = backend_auth(other.port, signed(cluster, challenge))
        assert status == 200 and reply["status"] == 1, reply
        subject = reply["subjectCertificateInfo"]["subjectName"]  # type: ignore[index]
        assert subject["1.2.860.3.16.1.2"] == PINFL, subject


def test_replay_is_refused_on_every_node(cluster: Cluster) -> None:
    body = signed(cluster, browser_challenge(cluster))
    status, reply, _ = backend_auth(cluster.internal_port, body)  # the backend's way in: nginx's internal server
    assert status == 200 and reply["status"] == 1, reply
    for port in (cluster.internal_port, *(node.port for node in cluster.nodes)):
        status, reply, _ = backend_auth(port, body)
        assert status == 200 and reply["status"] == -20, (port, reply)


def test_backend_is_not_reachable_through_the_public_site(cluster: Cluster) -> None:
    body = signed(cluster, browser_challenge(cluster))
    status, reply, _ = _request(f"https://127.0.0.1:{cluster.public_port}/backend/auth", body=body,
                                headers={"Host": SITE})
    assert status == 404, reply
    status, reply, _ = backend_auth(cluster.internal_port, body)  # so the challenge was still there
    assert status == 200 and reply["status"] == 1, reply


def test_dead_redis_gives_a_clear_error_quickly(cluster: Cluster) -> None:
    """Last in this module: it kills the cluster's Redis."""
    body = signed(cluster, browser_challenge(cluster))
    cluster.redis.kill()
    status, reply, elapsed = _request(f"https://127.0.0.1:{cluster.public_port}/frontend/challenge",
                                      headers={"Host": SITE})
    assert status == 503 and elapsed < 5, (status, reply, elapsed)
    assert reply["status"] != 1 and "redis" in str(reply["message"]).lower(), reply
    for node in cluster.nodes:
        status, reply, elapsed = backend_auth(node.port, body)
        assert status == 503 and elapsed < 5, (status, reply, elapsed)
        assert "redis" in str(reply["message"]).lower(), reply
        assert "Traceback" not in node.log()
    assert all(node.process.poll() is None for node in cluster.nodes)
