"""The agent serves the browser client, the E-IMZO compatibility scripts and the demo portal over HTTP.

The served bytes must be exactly the sources in browser_js/ and examples/demo-portal/ — from a checkout, and from
a built wheel, which carries them because setup.py copies them in.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import AgentProcess, http_exchange, start_agent

from eimzo_agent.portal import demo_site
from eimzo_agent.server import http, static_files

REPO = Path(__file__).resolve().parents[1]
JS = "text/javascript; charset=utf-8"
#: What installs, builds and test runs leave in a checkout: not part of the sources a wheel is built from.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "__pycache__",
                                     ".hypothesis", ".ruff_cache", ".pytest_cache", "*.so")


def source_of(name: str) -> Path:
    """Where a served file comes from in the repository."""
    return REPO / name


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    process = start_agent(tmp_path_factory.mktemp("static"))
    try:
        yield process
    finally:
        process.stop()


def get(agent: AgentProcess, path: str, method: str = "GET", extra: str = "") -> tuple[int, dict[str, str], bytes]:
    request = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{agent.port}\r\n{extra}\r\n"
    return http_exchange(agent.port, request.encode())


def test_every_route_has_its_source_and_no_copy_is_kept_in_the_package() -> None:
    for name in static_files.ROUTES.values():
        assert source_of(name).is_file(), name
    assert not static_files.STATIC_DIR.exists()  # one copy only: the checkout serves the sources themselves


def test_a_built_wheel_carries_every_served_file(tmp_path: Path) -> None:
    # pip builds inside the source folder (build/, *.egg-info): a copy keeps the checkout untouched.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w",
         str(tmp_path / "wheel"), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "wheel").glob("eimzo_agent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in set(static_files.ROUTES.values()) | set(demo_site.FILES.values()):  # + the portal's demo pages
            assert archive.read(f"eimzo_agent/server/static/{name}") == source_of(name).read_bytes(), name


@pytest.mark.parametrize("path", sorted(static_files.ROUTES))
def test_served_bytes_equal_the_sources_with_the_right_headers(agent: AgentProcess, path: str) -> None:
    status, headers, body = get(agent, path)
    assert status == 200
    assert body == source_of(static_files.ROUTES[path]).read_bytes()
    assert int(headers["content-length"]) == len(body)
    expected_type = {".js": JS, ".mjs": JS, ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8",
                     ".ts": "text/plain; charset=utf-8"}[Path(static_files.ROUTES[path]).suffix]
    assert headers["content-type"] == expected_type
    assert headers["cache-control"] == "public, max-age=3600"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["etag"].startswith('"') and headers["etag"].endswith('"') and len(headers["etag"]) == 34
    assert ("content-security-policy" in headers) == (expected_type.startswith("text/html"))


def test_demo_page_forbids_framing_and_foreign_scripts(agent: AgentProcess) -> None:
    _, headers, _ = get(agent, "/demo/")
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "ws://127.0.0.1:*" in csp
    assert headers["x-frame-options"] == "DENY"
    _, js_headers, _ = get(agent, "/eimzo-agent.js")
    assert "content-security-policy" not in js_headers


def test_etag_revalidation_gives_304_without_a_body(agent: AgentProcess) -> None:
    _, headers, body = get(agent, "/eimzo-agent.mjs")
    etag = headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        status, again, rest = get(agent, "/eimzo-agent.mjs", extra=f"If-None-Match: {header}\r\n")
        assert status == 304, header
        assert rest == b""
        assert again["etag"] == etag and again["cache-control"] == "public, max-age=3600"
        assert int(again["content-length"]) == len(body)
    status, _, fresh = get(agent, "/eimzo-agent.mjs", extra='If-None-Match: "stale"\r\n')
    assert status == 200 and fresh == body


def test_head_sends_the_headers_only(agent: AgentProcess) -> None:
    status, headers, body = get(agent, "/compat/e-imzo-client.js", method="HEAD")
    assert status == 200 and body == b""
    assert int(headers["content-length"]) == len((REPO / "browser_js/compat/e-imzo-client.js").read_bytes())
    assert headers["content-type"] == JS


def test_e_imzo_js_where_e_imzo_serves_it_and_demo_redirect(agent: AgentProcess) -> None:
    _, _, compat = get(agent, "/compat/e-imzo.js")
    status, _, body = get(agent, "/e-imzo.js")
    assert status == 200 and body == compat
    status, headers, _ = get(agent, "/demo")
    assert status == 301 and headers["location"] == "/demo/"


def test_status_page_preflight_404_and_host_guard_are_unchanged(agent: AgentProcess) -> None:
    status, headers, body = get(agent, "/")
    assert status == 200 and b"eimzo-agent" in body and headers["access-control-allow-origin"] == "*"
    status, headers, _ = get(agent, "/eimzo-agent.js", method="OPTIONS", extra="Origin: https://portal.uz\r\n")
    assert status == 204 and headers["access-control-allow-private-network"] == "true"
    for path in ("/compat/", "/compat/other.js", "/demo/../eimzo-agent.js", "/static/eimzo-agent.js", "/eimzo-agent"):
        status, _, body = get(agent, path)
        assert status == 404 and body == b"404 - Not Found", path
    status, _, _ = get(agent, "/eimzo-agent.js", method="POST")
    assert status == 404
    request = f"GET /eimzo-agent.js HTTP/1.1\r\nHost: evil.example:{agent.port}\r\n\r\n".encode()
    status, _, body = http_exchange(agent.port, request)
    assert status == 403 and b"const" not in body


def test_route_without_a_server() -> None:
    request = http.parse_request_head(b"GET /demo/app.mjs?v=1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
    answer = http.route(request, "ru")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == (REPO / "examples/demo-portal/app.mjs").read_bytes()
    assert static_files.not_modified(None, '"x"') is False
    assert static_files.not_modified('W/"x" , "y"', '"y"') is True
    assert static_files.not_modified('"xy"', '"x"') is False
