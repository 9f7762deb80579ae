"""The protocol layer alone: plain strings in, plain strings out, no sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eimzo_agent import i18n
from eimzo_agent.policy.domains import DomainGate, parse_key_pairs
from eimzo_agent.protocol.dispatcher import Call, CallContext, Dispatcher, build_apidoc
from eimzo_agent.protocol.errors import EimzoError
from eimzo_agent.protocol.origin import domain_of
from eimzo_agent.protocol.registry import MAIN, Argument, PluginFunction, Registry

FUNCTION_NOT_FOUND = i18n.text("ru", "reasons", "function_not_found")


def make_dispatcher(lang: str = "ru", allow: tuple[str, ...] = ()) -> Dispatcher:
    registry = Registry()

    async def echo(call: Call) -> dict[str, Any]:
        return {"echo": call.values}

    async def boom(call: Call) -> dict[str, Any]:
        raise RuntimeError("/secret/path/to/file.pfx exploded")

    async def refuse(call: Call) -> dict[str, Any]:
        raise EimzoError(-2011, "disk_not_found")

    async def version(call: Call) -> dict[str, Any]:
        return {"major": "6"}

    registry.add(PluginFunction(MAIN, "version", version, needs_approved_domain=False))
    registry.add(PluginFunction("t", "echo", echo, (Argument("a", "первый"), Argument("b", optional=True)), "Эхо"))
    registry.add(PluginFunction("t", "boom", boom))
    registry.add(PluginFunction("t", "refuse", refuse, description="Отказ"))
    return Dispatcher(registry, DomainGate(allow), lambda: lang)


def handle(dispatcher: Dispatcher, frame: str, origin: str | None = "http://localhost:3000") -> Any:
    return json.loads(asyncio.run(dispatcher.handle(frame, CallContext(origin=origin))))


def test_success_reply_is_flat_with_status_1() -> None:
    reply = handle(make_dispatcher(), '{"plugin":"t","name":"echo","arguments":["x",""]}')
    assert reply == {"success": True, "status": 1, "echo": ["x", ""]}


def test_main_plugin_is_the_empty_or_missing_plugin() -> None:
    d = make_dispatcher()
    assert handle(d, '{"name":"version"}')["major"] == "6"
    assert handle(d, '{"plugin":"","name":"version"}')["major"] == "6"
    assert handle(d, '{"plugin":null,"name":"version"}')["major"] == "6"


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "",
        "[]",
        '"text"',
        "{}",
        '{"plugin":"t"}',
        '{"plugin":"nope","name":"echo","arguments":["x",""]}',
        '{"plugin":"t","name":"nope"}',
        '{"plugin":"t","name":"echo","arguments":["x"]}',
        '{"plugin":"t","name":"echo","arguments":["x","y","z"]}',
        '{"plugin":"t","name":"echo","arguments":"x"}',
        '{"plugin":"t","name":"echo","arguments":[{"a":1},""]}',
        '{"plugin":5,"name":"echo"}',
        "[" * 100000,
    ],
)
def test_bad_requests_get_the_status_0_reply(frame: str) -> None:
    assert handle(make_dispatcher(), frame) == {"success": False, "status": 0, "reason": FUNCTION_NOT_FOUND}


def test_scalar_arguments_are_taken_as_text() -> None:
    reply = handle(make_dispatcher(), '{"plugin":"t","name":"echo","arguments":[1,null]}')
    assert reply["echo"] == ["1", ""]


def test_gate_unknown_origin_and_foreign_domain() -> None:
    d = make_dispatcher()
    frame = '{"plugin":"t","name":"echo","arguments":["x",""]}'
    assert handle(d, frame, origin=None) == {
        "success": False,
        "status": -1021,
        "reason": "Не удалось идентифицировать домен.",
    }
    assert handle(d, frame, origin="ftp://x") ["status"] == -1021
    reply = handle(d, frame, origin="https://evil.example")
    assert reply == {"success": False, "status": -1022, "reason": "API-key для домена evil.example недействителен."}
    assert handle(d, '{"name":"version"}', origin=None)["success"] is True  # version is never gated


def test_allowlist_and_wildcards() -> None:
    d = make_dispatcher(allow=("portal.uz", "*.gov.uz"))
    frame = '{"plugin":"t","name":"echo","arguments":["x",""]}'
    assert handle(d, frame, origin="https://portal.uz")["success"]
    assert handle(d, frame, origin="https://my.gov.uz:8443")["success"]
    assert handle(d, frame, origin="https://gov.uz")["status"] == -1022
    assert handle(d, frame, origin="https://evilportal.uz")["status"] == -1022
    assert handle(d, frame, origin="https://portal.uz.evil.com")["status"] == -1022


def test_errors_are_translated_and_internal_errors_leak_nothing() -> None:
    assert handle(make_dispatcher("uz"), '{"plugin":"t","name":"refuse"}') == {
        "success": False,
        "status": -2011,
        "reason": "Disk topilmadi",
    }
    reply = handle(make_dispatcher("en"), '{"plugin":"t","name":"boom"}')
    assert reply["status"] == -9999 and reply["success"] is False
    assert "secret" not in json.dumps(reply) and "Traceback" not in json.dumps(reply)


def test_apidoc_lists_described_functions_only() -> None:
    d = make_dispatcher()
    doc = build_apidoc(d.registry, "ru")
    assert [p["name"] for p in doc] == ["t"]
    names = [f["name"] for f in doc[0]["functions"]]
    assert names == ["echo", "refuse"]  # "boom" has no description: hidden, as in E-IMZO
    assert doc[0]["functions"][0]["arguments"] == [
        {"name": "a", "optional": False, "description": "первый"},
        {"name": "b", "optional": True, "description": ""},
    ]


@pytest.mark.parametrize(
    ("origin", "domain"),
    [
        ("http://localhost:8080", "localhost"),
        ("https://My.Portal.UZ", "my.portal.uz"),
        ("https://portal.uz.", "portal.uz"),
        ("http://127.0.0.1:3000", "127.0.0.1"),
        ("null", "null"),
        (None, None),
        ("", None),
        ("file:///C:/x.html", None),
        ("chrome-extension://abc", None),
        ("https://x.uz/path", None),
        ("https://user@x.uz", None),
        ("http://x.uz:99999", None),
        ("garbage", None),
    ],
)
def test_domain_of_origin(origin: str | None, domain: str | None) -> None:
    assert domain_of(origin) == domain


def test_api_key_pairs() -> None:
    assert parse_key_pairs(["Localhost", "AB", "127.0.0.1", "CD"]) == [("localhost", "AB"), ("127.0.0.1", "CD")]
    assert parse_key_pairs([]) is None
    assert parse_key_pairs(["a"]) is None
    assert parse_key_pairs(["", "k"]) is None


def test_verifier_plugs_into_the_gate() -> None:
    class Verifier:
        def verify(self, domain: str, key: str) -> bool | None:
            return {"good": True, "bad": False}.get(key)

    gate = DomainGate((), [Verifier()])
    assert gate.install_keys([("a.uz", "good"), ("b.uz", "bad"), ("c.uz", "unknown")]) == ["b.uz"]
    assert gate.is_allowed("a.uz") and not gate.is_allowed("b.uz") and not gate.is_allowed("c.uz")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
            lambda children: st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4),
            max_leaves=12,
        ).map(json.dumps),
        st.fixed_dictionaries(
            {"plugin": st.sampled_from(["", "t", "x", None]), "name": st.text(max_size=10)},
            optional={"arguments": st.lists(st.text(max_size=5) | st.integers(), max_size=4)},
        ).map(json.dumps),
    )
)
def test_any_frame_gets_one_well_formed_reply(frame: str) -> None:
    reply = handle(make_dispatcher(), frame)
    assert isinstance(reply, dict)
    assert isinstance(reply["success"], bool) and isinstance(reply["status"], int)
    if not reply["success"]:
        assert isinstance(reply["reason"], str) and reply["reason"]


def test_every_language_has_every_string() -> None:
    reference = i18n.catalogue("ru")
    for lang in i18n.LANGUAGES:
        catalogue = i18n.catalogue(lang)
        for section, texts in reference.items():
            missing = set(texts) - set(catalogue.get(section, {}))
            assert not missing, f"{lang}.toml lacks {section}: {sorted(missing)}"


def test_language_normalisation() -> None:
    assert i18n.normalize_language("uz_UZ.UTF-8") == "uz"
    assert i18n.normalize_language("ru-RU") == "ru"
    assert i18n.normalize_language("kaa") == "kaa"
    assert i18n.normalize_language("de_DE") is None
