from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from eimzo_agent.config import ConfigError, load_config
from eimzo_agent.keys.sessions import KeySessions, LoadedKey
from eimzo_agent.server.http import BadRequest, host_allowed, parse_request_head


def key(origin: str) -> LoadedKey:
    return LoadedKey("", origin, "PFX_KEY_STORE", "/d/", "", "DS1", "cn=x", Path("/d/DS1.pfx"))


def test_key_ids_are_random_hex_bound_to_origin_and_expire() -> None:
    now = [1000.0]
    sessions = KeySessions(ttl_seconds=6 * 3600, clock=lambda: now[0])
    key_id = sessions.add(key("http://a"))
    assert len(key_id) == 32 and int(key_id, 16) >= 0 and key_id == key_id.lower()
    assert sessions.get(key_id, "http://a") is not None
    assert sessions.get(key_id, "http://b") is None
    assert sessions.get(key_id, None) is None
    assert not sessions.remove(key_id, "http://b")
    now[0] += 6 * 3600 - 1  # still alive just before the TTL (each use renews it)
    assert sessions.get(key_id, "http://a") is not None
    now[0] += 6 * 3600 + 1
    assert sessions.get(key_id, "http://a") is None
    other = sessions.add(key("http://a"))
    assert other != key_id and sessions.remove(other, "http://a") and len(sessions) == 0


def test_which_pages_may_sign_with_an_ozdst_key() -> None:
    """KeySessions.has_keys(ozdst=True): the agent's test for hashing a large document ahead (agent.py)."""
    sessions = KeySessions()
    assert not sessions.has_keys("http://a") and not sessions.has_keys(None)
    rsa = sessions.add(dataclasses.replace(key("http://a"), ozdst=False))
    assert sessions.has_keys("http://a") and not sessions.has_keys("http://a", ozdst=True)
    sessions.add(dataclasses.replace(key("http://a"), ozdst=None))  # its kind not known: it may be O'zDSt
    assert sessions.has_keys("http://a", ozdst=True)
    sessions.add(dataclasses.replace(key("http://b"), ozdst=True))
    assert sessions.has_keys("http://b", ozdst=True) and not sessions.has_keys("http://c", ozdst=True)
    assert sessions.remove(rsa, "http://a") and sessions.has_keys("http://a", ozdst=True)


def test_one_origin_cannot_grow_sessions_without_bound() -> None:
    sessions = KeySessions()
    for _ in range(1000):
        sessions.add(key("http://flood"))
    keep = sessions.add(key("http://other"))
    assert len(sessions) <= 257 and sessions.get(keep, "http://other") is not None


def test_config_precedence_user_admin_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[server]\nws_port = 1111\n[sites]\nallowed_domains = ["user.uz"]\n[ui]\nlanguage = "uz"\n')
    admin = tmp_path / "admin.toml"
    admin.write_text('[sites]\nallowed_domains = ["admin.uz"]\n[keys]\nroots = ["/srv/keys"]\n')
    monkeypatch.setenv("EIMZO_AGENT_SYSTEM_CONFIG", str(admin))
    config = load_config(user, {"ws_port": None, "key_roots": ["/cli/keys"], "askpass": "/bin/pw"})
    assert config.ws_port == 1111
    assert config.allowed_domains == ["admin.uz"]  # the admin file wins over the user's
    assert config.language == "uz"
    assert config.key_roots == [Path("/cli/keys"), Path("/srv/keys")]
    assert config.askpass == "/bin/pw"
    assert config.sources == [user, admin]
    assert load_config(user, {"ws_port": 2222}).ws_port == 2222  # the command line wins over both


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nws_port = 'x'\n", "wrong type"),
        ("[server]\nws_port = 70000\n", "server.ws_port = 70000: expected a port number from 1 to 65535"),
        ("[nope]\na = 1\n", "unknown section"),
        ("[ui]\ncolour = 1\n", "unknown setting ui.colour"),
        ("[ui]\nlanguage = 'de'\n", "ui.language = 'de': expected one of"),
        ("not toml [", "not valid TOML"),
        ("[keys]\nroots = [1]\n", "list of strings"),
    ],
)
def test_bad_config_is_reported_precisely(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_key_id_ttl_below_six_hours_is_refused_not_clamped(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[keys]\nkey_id_ttl_hours = 1\n")
    with pytest.raises(ConfigError, match=r"c\.toml: keys\.key_id_ttl_hours = 1: expected hours from 6 "):
        load_config(path)
    path.write_text("[keys]\nkey_id_ttl_hours = 6\n")
    assert load_config(path).key_id_ttl_hours == 6


def test_http_head_parsing_and_host_guard() -> None:
    request = parse_request_head(b"GET /service/cryptapi?keepConnection HTTP/1.1\r\nHost: 127.0.0.1:64646\r\n"
                                 b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    assert request.path == "/service/cryptapi" and "keepConnection" in request.query
    assert request.is_websocket_upgrade()
    assert host_allowed("127.0.0.1:64646", 64646) and host_allowed("LOCALHOST:64646", 64646)
    for host in (None, "evil.com:64646", "127.0.0.1", "127.0.0.1:1", "localhost.evil.com:64646", "[::1]:64646"):
        assert not host_allowed(host, 64646)
    for bad in (b"GARBAGE\r\n\r\n", b"GET http://x/ HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nbad header\r\n\r\n"):
        with pytest.raises(BadRequest):
            parse_request_head(bad)
    twice = parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    with pytest.raises(BadRequest):
        twice.header("Host")
