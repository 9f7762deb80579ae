"""The protocol layer alone: plain strings in, plain strings out, no sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eimzo_agent import i18n
from eimzo_agent.caller import Caller
from eimzo_agent.policy.domains import DomainGate, parse_key_pairs
from eimzo_agent.protocol import base64data, replies
from eimzo_agent.protocol import dispatcher as dispatcher_module
from eimzo_agent.protocol.calls import MAIN, Argument, Call, CallContext, PluginFunction
from eimzo_agent.protocol.dispatcher import Dispatcher, build_apidoc
from eimzo_agent.protocol.errors import EimzoError
from eimzo_agent.protocol.large_request import FramePieces, LongText, load_request, plain
from eimzo_agent.protocol.registry import Registry

REQUEST_INVALID = i18n.text("ru", "reasons", "request_invalid")


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
    return Dispatcher(registry, DomainGate(allow), lambda caller: lang)


def handle(dispatcher: Dispatcher, frame: str, origin: str | None = "http://localhost:3000") -> Any:
    return json.loads(asyncio.run(dispatcher.handle(frame, CallContext.from_origin(origin))))


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
        '{"plugin":"t","name":"echo","arguments":"x"}',
        '{"plugin":"t","name":"echo","arguments":[{"a":1},""]}',
        '{"plugin":5,"name":"echo"}',
        "[" * 100000,
    ],
)
def test_frames_that_are_no_call_get_the_status_0_reply(frame: str) -> None:
    assert handle(make_dispatcher(), frame) == {"success": False, "status": 0, "reason": REQUEST_INVALID}


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        ('{"plugin":"nope","name":"echo","arguments":["x",""]}', "nope.echo"),
        ('{"plugin":"t","name":"nope"}', "t.nope"),
        ('{"name":"get_timestamp_token_request_for_signature"}', "get_timestamp_token_request_for_signature"),
        ('{"plugin":"t","name":"a\\u0000b\\n"}', "t.a?b?"),
    ],
)
def test_a_missing_function_is_named_and_said_to_be_missing_from_eimzo_agent(frame: str, named: str) -> None:
    """E-IMZO's status 0 says "update E-IMZO": wrong advice for us. The reply names the function instead."""
    reply = handle(make_dispatcher("en"), frame)
    assert reply == {"success": False, "status": 0, "reason": f"eimzo-agent has no function {named}."}
    assert "E-IMZO" not in handle(make_dispatcher("ru"), frame)["reason"]


@pytest.mark.parametrize("arguments", ['[]', '["x","y","z"]'])
def test_a_wrong_argument_count_is_status_0_naming_the_function_and_the_counts(arguments: str) -> None:
    reply = handle(make_dispatcher("en"), f'{{"plugin":"t","name":"echo","arguments":{arguments}}}')
    count = len(json.loads(arguments))
    assert reply == {"success": False, "status": 0, "reason": f"Function t.echo takes 1–2 arguments, not {count}."}


def test_a_long_unknown_name_is_cut_in_the_reply() -> None:
    reply = handle(make_dispatcher("en"), json.dumps({"plugin": "p", "name": "x" * 5000}))
    assert reply["status"] == 0 and len(reply["reason"]) < 200


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
    assert reply == {"success": False, "status": -1022, "reason": "API-ключ для домена evil.example недействителен."}
    assert handle(d, '{"name":"version"}', origin=None)["success"] is True  # version is never gated


def test_allowlist_and_wildcards() -> None:
    d = make_dispatcher(allow=("portal.uz", "*.gov.uz"))
    frame = '{"plugin":"t","name":"echo","arguments":["x",""]}'
    assert handle(d, frame, origin="https://portal.uz")["success"]
    assert handle(d, frame, origin="http://portal.uz")["success"]  # the admin names hosts, for any scheme
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
    ("origin", "expected"),
    [
        ("http://localhost:8080", ("http://localhost:8080", "http://localhost", "localhost", False)),
        ("https://My.Portal.UZ", ("https://my.portal.uz", "https://my.portal.uz", "my.portal.uz", False)),
        ("https://portal.uz.", ("https://portal.uz", "https://portal.uz", "portal.uz", False)),
        ("https://portal.uz:443", ("https://portal.uz", "https://portal.uz", "portal.uz", False)),
        ("http://127.0.0.1:3000", ("http://127.0.0.1:3000", "http://127.0.0.1", "127.0.0.1", False)),
        ("null", ("null", None, None, True)),
        (None, (None, None, None, False)),
        ("", (None, None, None, False)),
        ("file:///C:/x.html", (None, None, None, False)),
        ("chrome-extension://abc", (None, None, None, False)),
        ("https://x.uz/path", (None, None, None, False)),
        ("https://user@x.uz", (None, None, None, False)),
        ("http://x.uz:99999", (None, None, None, False)),
        ("garbage", (None, None, None, False)),
    ],
)
def test_caller_from_origin(origin: str | None, expected: tuple[Any, ...]) -> None:
    caller = Caller.from_origin(origin)
    assert (caller.origin, caller.site, caller.domain, caller.opaque) == expected


def test_the_site_keeps_the_scheme_and_the_limit_key_is_the_registrable_domain() -> None:
    secure, plain = Caller.from_origin("https://a.b.soliq.uz"), Caller.from_origin("http://a.b.soliq.uz")
    assert secure.site != plain.site
    assert secure.limit_key == plain.limit_key == Caller.from_origin("https://x.soliq.uz").limit_key == "soliq.uz"
    assert Caller.from_origin("https://one.github.io").limit_key != Caller.from_origin("https://two.github.io").limit_key
    assert Caller.from_origin("http://127.0.0.1:1").limit_key != Caller.from_origin("http://127.0.0.1:2").limit_key
    assert Caller.from_origin("https://192.0.2.7:1").limit_key == Caller.from_origin("https://192.0.2.7:2").limit_key
    assert Caller.from_origin("null").limit_key == "null"


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
    page = Caller.from_origin("https://a.uz")
    assert gate.install_keys([("a.uz", "good"), ("b.uz", "bad"), ("c.uz", "unknown")], page) == ["b.uz"]
    assert gate.is_allowed(page)
    assert not gate.is_allowed(Caller.from_origin("https://b.uz"))
    assert not gate.is_allowed(Caller.from_origin("https://c.uz"))


def test_an_api_key_approves_only_the_page_that_sent_it_on_its_own_scheme() -> None:
    class Verifier:
        def verify(self, domain: str, key: str) -> bool | None:
            return key == f"key-of-{domain}"

    gate = DomainGate((), [Verifier()])
    sender = Caller.from_origin("https://a.uz")
    assert gate.install_keys([("a.uz", "key-of-a.uz"), ("b.uz", "key-of-b.uz")], sender) == []
    assert gate.is_allowed(sender) and gate.is_allowed(Caller.from_origin("https://a.uz:8443"))
    assert not gate.is_allowed(Caller.from_origin("http://a.uz")), "an https approval must not cover http"
    assert not gate.is_allowed(Caller.from_origin("https://b.uz")), "a key sent by another page approves nothing"


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


# --- large frames: parsed without json.loads over the document (protocol/large_request.py) ----------------------

LONG = "QUJD" * 20000  # 80 000 characters of Base64: over large_request.LONG_STRING

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.sampled_from([LONG, LONG[:-4] + "é\"\\/"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_a_large_frame_parses_exactly_as_json_loads(value: Any, ascii_only: bool) -> None:
    frame = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert plain(load_request(frame)) == json.loads(frame.decode())


def test_long_strings_of_an_ascii_frame_stay_in_the_frame_until_asked_for() -> None:
    frame = bytearray(json.dumps({"name": "create_pkcs7", "arguments": [LONG, "key", "no"]}).encode())
    request = load_request(frame)
    document = request["arguments"][0]
    assert isinstance(document, LongText) and len(document) == len(LONG)
    assert document.view().obj is frame  # a view of the frame, no copy
    assert document.text() == LONG and document.text() is document.text()  # made once
    function = PluginFunction("pkcs7", "create_pkcs7", _echo, (Argument("data_64"), Argument("id")))
    call = Call(function, [LongText(frame, 0, 10), "key"], CallContext.from_origin(None), "en")
    assert call.arg("data_64") == frame[:10].decode() and isinstance(call.long_arg("data_64"), LongText)
    # Not all ASCII: the long strings are made as before (the ordinary checks apply to them).
    frame_uz = json.dumps({"name": "o'zbek tili: ў", "arguments": [LONG]}, ensure_ascii=False).encode()
    assert load_request(frame_uz)["arguments"][0] == LONG


def _create_pkcs7_call(frame: bytes | bytearray) -> Call:
    request = load_request(frame)
    function = PluginFunction("pkcs7", "create_pkcs7", _echo,
                              (Argument("data_64"), Argument("id"), Argument("detached", optional=True)))
    return Call(function, request["arguments"], CallContext.from_origin(None), "en")


def test_a_decoded_documents_frame_is_freed_before_the_reply() -> None:
    """`Call.release_long_arg` (plugins/pkcs7.py, once the document is decoded): the 13.6 MB frame of a 10 MB
    document goes at once, not after the signature's reply."""
    frame = bytearray(json.dumps({"name": "create_pkcs7", "arguments": [LONG, "key", "no"]}).encode())
    call = _create_pkcs7_call(frame)
    document = call.long_arg("data_64")
    assert isinstance(document, LongText)
    assert bytes(document.view()) == LONG.encode()  # the plugin's view is gone once decoded
    assert call.release_long_arg("data_64") is True
    assert len(frame) == 0  # emptied in place: every holder of the frame sees its memory gone
    assert call.arg("id") == "key" and call.arg("detached") == "no"  # short arguments were copied out at parsing
    with pytest.raises(ValueError, match="released"):
        document.view()
    assert call.release_long_arg("data_64") is False  # once


def test_a_frame_is_kept_while_anything_still_reads_it() -> None:
    # Another long argument not yet read: the frame stays until it is (then it can go).
    frame = bytearray(json.dumps({"name": "create_pkcs7", "arguments": [LONG, LONG[:-4] + "QUJE", "no"]}).encode())
    call = _create_pkcs7_call(frame)
    assert call.release_long_arg("data_64") is False and len(frame) > 0
    assert call.arg("id") == LONG[:-4] + "QUJE"  # read (made a str): nothing else needs the frame now
    assert call.release_long_arg("data_64") is True and len(frame) == 0
    # A view of the frame still alive: released only as far as this text goes; the frame goes with the request.
    frame = bytearray(json.dumps({"name": "create_pkcs7", "arguments": [LONG, "key"]}).encode())
    call = _create_pkcs7_call(frame)
    held = call.long_arg("data_64").view()  # type: ignore[union-attr]
    assert call.release_long_arg("data_64") is False and len(frame) > 0 and bytes(held[:4]) == b"QUJD"
    held.release()
    # Immutable bytes (a frame websockets parsed): nothing to free early.
    call = _create_pkcs7_call(json.dumps({"name": "create_pkcs7", "arguments": [LONG, "key"]}).encode())
    assert call.release_long_arg("data_64") is False
    # A short document is a str: nothing to release.
    call = _create_pkcs7_call(json.dumps({"name": "create_pkcs7", "arguments": ["QUJD", "key"]}).encode())
    assert call.release_long_arg("data_64") is False


async def _echo(call: Call) -> dict[str, Any]:
    return {}


@pytest.mark.parametrize("frame", [
    b'{"name":"x","arguments":["' + LONG.encode() + b'"]',  # unterminated object
    b'{"name":"x","arguments":["' + LONG.encode() + b'"],}',  # trailing comma
    b'{"name":"x","arguments":["' + LONG.encode() + b'"]} tail',
    b'{"name":"x","arguments":["' + LONG.encode(),  # unterminated string
    b'\xff{"name":"x","arguments":["' + LONG.encode() + b'"]}',  # not UTF-8
    b'{"name":"\xc3","arguments":["' + LONG.encode() + b'"]}',
])
def test_a_large_frame_that_is_not_json_is_refused(frame: bytes) -> None:
    with pytest.raises(ValueError):
        load_request(frame)


def test_a_large_frame_reaches_the_function_and_a_bad_one_gets_status_0() -> None:
    d = make_dispatcher()
    context = CallContext.from_origin("http://localhost:3000")
    big = "A" * (2 * 1024 * 1024)  # over the dispatcher's LARGE_FRAME: parsed in a worker thread
    frame = json.dumps({"plugin": "t", "name": "echo", "arguments": [big, "b"]}).encode()
    reply = json.loads(asyncio.run(d.handle(frame, context)))
    assert reply["echo"] == [big, "b"]
    bad = json.loads(asyncio.run(d.handle(frame[:-1], context)))
    assert bad == {"success": False, "status": 0, "reason": REQUEST_INVALID}


# --- large Base64 values in replies: pieces, never one string ----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.binary(max_size=40), max_size=8), piece=st.sampled_from([3, 6, 12, 3 * 256 * 1024]))
def test_base64_pieces_are_the_base64_of_the_joined_parts(parts: list[bytes], piece: int) -> None:
    value = base64data.encode_pieces(parts, piece)
    expected = base64.b64encode(b"".join(parts)).decode()
    if isinstance(value, base64data.Base64Pieces):
        assert value.text() == expected and len(value) == len(expected)
        assert all(0 < len(p) <= piece * 4 // 3 for p in value.pieces)
        assert sum(len(part) for part in parts) > piece
    else:
        assert value == expected and isinstance(value, base64data.Base64Text)


def test_a_reply_with_base64_pieces_is_the_json_of_the_whole_value() -> None:
    document = os.urandom(3 * base64data.PIECE_BYTES + 5)
    value = base64data.encode_pieces([b"head", document, b"tail"])
    assert isinstance(value, base64data.Base64Pieces) and len(value.pieces) > 3
    payload = {"pkcs7_64": value, "signer_serial_number": 'a"b', "signature_hex": "00"}
    parts = replies.encode_reply_parts(replies.success(payload))
    assert len(parts) > len(value.pieces)  # the pieces went out as they are
    whole = json.loads("".join(parts))
    assert base64.b64decode(whole["pkcs7_64"]) == b"head" + document + b"tail"
    assert whole["signer_serial_number"] == 'a"b' and list(whole)[:2] == ["success", "status"]
    with pytest.raises(TypeError):  # anywhere but a reply's own field it is refused, never written as an array
        json.dumps({"nested": [value]})


def test_a_request_in_pieces_is_joined_and_parsed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """FramePieces (a large request as it arrived) is put together where it is parsed: a worker thread for a large
    one, so the event loop never copies 13.6 MB; the reply is the same as for the whole text."""
    threads: list[str] = []
    real = dispatcher_module.load_request

    def load_request(frame: bytes | bytearray, prepared: Any = None) -> Any:
        threads.append(threading.current_thread().name)
        return real(frame, prepared)

    monkeypatch.setattr(dispatcher_module, "load_request", load_request)
    text = json.dumps({"plugin": "t", "name": "echo", "arguments": ["x" * (2 * 1024 * 1024), ""]}).encode()
    pieces = FramePieces([text[i:i + 262144] for i in range(0, len(text), 262144)], len(text))
    reply = asyncio.run(make_dispatcher().answer(pieces, CallContext.from_origin("http://localhost:3000")))
    assert json.loads("".join(reply)) == {"success": True, "status": 1, "echo": ["x" * (2 * 1024 * 1024), ""]}
    assert len(threads) == 1 and threads[0] != "MainThread"
