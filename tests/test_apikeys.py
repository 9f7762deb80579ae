"""API keys: the offline check of the vendor's signed keys, remembering approved domains, and the real agent."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from agent_harness import start_agent

from eimzo_agent.caller import Caller
from eimzo_agent.policy.apikeys import VENDOR_PUBLIC_KEY, VendorApiKeyVerifier, apikey_digest
from eimzo_agent.policy.approved_store import APPROVED_FILE, ApprovedDomainStore
from eimzo_agent.policy.domains import MAX_KEYS_PER_CALL, DomainGate

# Known-answer data shared by the project (see ../shared/README.md): the published keys and the vendor key.
KAT = json.loads((Path(__file__).resolve().parent / "data" / "eimzo-kat.json").read_text())
PUBLISHED = KAT["eimzo_api_keys"]["keys"]
DOMAINS = sorted(PUBLISHED)
TEST_PORTAL = "test.e-imzo.uz"

verifier = VendorApiKeyVerifier()


def test_embedded_vendor_key_is_the_published_one() -> None:
    vendor = KAT["eimzo_api_keys"]["vendor_public_key"]
    assert (int(vendor["x"], 16), int(vendor["y"], 16)) == VENDOR_PUBLIC_KEY


def test_there_are_five_published_keys() -> None:
    assert DOMAINS == ["127.0.0.1", "localhost", "null", "test.e-imzo.local", "test.e-imzo.uz"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_published_key_verifies_for_its_domain(domain: str) -> None:
    assert verifier.verify(domain, PUBLISHED[domain]) is True
    # Portals send keys in upper case; hex is hex. Domains compare lower-case, as Origin hosts are.
    assert verifier.verify(domain.upper(), PUBLISHED[domain].lower()) is True
    assert verifier.verify(f"  {domain} ", f" {PUBLISHED[domain]}\n") is True


@pytest.mark.parametrize("domain", DOMAINS)
def test_key_fails_for_every_other_domain(domain: str) -> None:
    for other in DOMAINS:
        if other != domain:
            assert verifier.verify(other, PUBLISHED[domain]) is False, (domain, other)
    assert verifier.verify(domain + ".evil.example", PUBLISHED[domain]) is False


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("position", [0, 63, 64, 127])  # first and last digit of s, first and last of r
def test_one_changed_hex_digit_fails(domain: str, position: int) -> None:
    key = PUBLISHED[domain]
    digit = "0" if key[position] != "0" else "1"
    tampered = key[:position] + digit + key[position + 1 :]
    assert verifier.verify(domain, tampered) is False


@pytest.mark.parametrize(
    "key",
    [
        "",
        "00" * 64,  # s = r = 0 is out of range, never a signature
        PUBLISHED[TEST_PORTAL][:-1],  # 127 digits
        PUBLISHED[TEST_PORTAL] + "0",  # 129 digits
        PUBLISHED[TEST_PORTAL][:-2] + "zz",
        PUBLISHED[TEST_PORTAL][:64] + " " + PUBLISHED[TEST_PORTAL][64:],
        "0x" + PUBLISHED[TEST_PORTAL][2:],
        "Ｆ" * 128,  # full-width letters are not hex digits
    ],
)
def test_malformed_keys_fail(key: str) -> None:
    assert verifier.verify(TEST_PORTAL, key) is False


def test_non_ascii_domain_fails_without_error() -> None:
    assert verifier.verify("tеst.e-imzo.uz", PUBLISHED[TEST_PORTAL]) is False  # Cyrillic "е"


def test_digest_is_the_double_hash_of_the_lower_case_domain() -> None:
    from eimzo_agent.crypto.gost94 import gost94_digest

    assert apikey_digest("Test.E-IMZO.uz") == gost94_digest(gost94_digest(b"test.e-imzo.uz"))


# --- the domain gate with the verifier and a store ---------------------------------------------------------------


def make_gate(path: Path, allowlist: tuple[str, ...] = ()) -> DomainGate:
    return DomainGate(allowlist, [verifier], store=ApprovedDomainStore(path))


def page(origin: str) -> Caller:
    return Caller.from_origin(origin)


PORTAL_PAGE = page(f"https://{TEST_PORTAL}")


def test_gate_approves_a_domain_only_with_its_own_key(tmp_path: Path) -> None:
    gate = make_gate(tmp_path / APPROVED_FILE)
    other = page("https://other.example")
    assert not gate.is_allowed(PORTAL_PAGE)
    assert gate.install_keys([("other.example", PUBLISHED[TEST_PORTAL])], other) == ["other.example"]
    assert not gate.is_allowed(other) and not gate.is_allowed(PORTAL_PAGE)
    pairs = [(TEST_PORTAL, PUBLISHED[TEST_PORTAL]), ("localhost", PUBLISHED["localhost"])]
    assert gate.install_keys(pairs, other) == []
    assert not gate.is_allowed(PORTAL_PAGE), "a key presented by another site's page must approve nothing"
    assert gate.install_keys(pairs, PORTAL_PAGE) == []
    assert gate.is_allowed(PORTAL_PAGE)
    assert not gate.is_allowed(other)


def test_an_https_approval_does_not_carry_over_to_http(tmp_path: Path) -> None:
    path = tmp_path / APPROVED_FILE
    make_gate(path).install_keys([(TEST_PORTAL, PUBLISHED[TEST_PORTAL])], PORTAL_PAGE)
    gate = make_gate(path)
    assert gate.is_allowed(PORTAL_PAGE) and gate.is_allowed(page(f"https://{TEST_PORTAL}:8443"))
    assert not gate.is_allowed(page(f"http://{TEST_PORTAL}"))


def test_the_null_key_never_approves_an_opaque_origin(tmp_path: Path) -> None:
    """The vendor publishes a key for "null": any site's sandboxed iframe can present it. It must approve nothing,
    and a "null" approval remembered by an earlier version must not be honoured."""
    path = tmp_path / APPROVED_FILE
    opaque = page("null")
    gate = make_gate(path)
    assert gate.install_keys([("null", PUBLISHED["null"])], opaque) == []  # the key itself is genuine
    assert not gate.is_allowed(opaque)
    assert not path.exists() or "null" not in path.read_text()
    path.write_text(json.dumps({"version": 1, "domains": ["null", TEST_PORTAL]}))  # an earlier version's file
    earlier = make_gate(path)
    assert not earlier.is_allowed(opaque)
    assert earlier.is_allowed(PORTAL_PAGE) and not earlier.is_allowed(page(f"http://{TEST_PORTAL}"))


def test_a_stuffed_apikey_call_checks_a_bounded_number_of_keys(tmp_path: Path) -> None:
    calls: list[str] = []

    class Counting:
        def verify(self, domain: str, key: str) -> bool:
            calls.append(domain)
            return verifier.verify(domain, key)

    gate = DomainGate((), [Counting()], store=ApprovedDomainStore(tmp_path / APPROVED_FILE))
    junk = [(f"d{i}.example", "11" * 64) for i in range(MAX_KEYS_PER_CALL)]
    invalid = gate.install_keys([*junk, (TEST_PORTAL, PUBLISHED[TEST_PORTAL])], PORTAL_PAGE)
    assert len(calls) == MAX_KEYS_PER_CALL
    assert invalid == [d for d, _ in junk] + [TEST_PORTAL]  # past the limit a key counts as invalid, unchecked
    assert not gate.is_allowed(PORTAL_PAGE)


def test_approved_sites_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "data" / "eimzo-agent" / APPROVED_FILE
    first = make_gate(path)
    first.install_keys([(TEST_PORTAL, PUBLISHED[TEST_PORTAL]), ("null", PUBLISHED["null"]),
                        ("localhost", PUBLISHED["localhost"]), ("bad.example", "00" * 64)], PORTAL_PAGE)
    first.install_keys([("localhost", PUBLISHED["localhost"])], page("http://localhost:8080"))
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # Local pages always pass and are not written; refused domains and other pages' keys never are.
    assert json.loads(path.read_text()) == {"version": 1, "domains": [f"https://{TEST_PORTAL}"]}

    second = make_gate(path)
    assert second.is_allowed(PORTAL_PAGE)
    assert not second.is_allowed(page("https://bad.example"))
    assert second.approved_sites() == [f"https://{TEST_PORTAL}"]
    assert not any(p.name.endswith(".tmp") for p in path.parent.iterdir())


def test_admin_allowlist_works_beside_the_store(tmp_path: Path) -> None:
    path = tmp_path / APPROVED_FILE
    make_gate(path).install_keys([(TEST_PORTAL, PUBLISHED[TEST_PORTAL])], PORTAL_PAGE)
    gate = make_gate(path, allowlist=("*.gov.uz", "my.portal.uz"))
    assert gate.is_allowed(PORTAL_PAGE)
    assert gate.is_allowed(page("https://id.gov.uz")) and gate.is_allowed(page("http://my.portal.uz"))
    assert not gate.is_allowed(page("https://gov.uz")) and not gate.is_allowed(page("https://other.example"))


@pytest.mark.parametrize(
    "content",
    [
        b"{ this is not json",
        b"\xff\xfe\x00garbage",
        b'["test.e-imzo.uz"]',
        b'{"version": 1, "domains": "test.e-imzo.uz"}',
        b"[" * 100000,
    ],
)
def test_corrupt_store_starts_empty_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                   content: bytes) -> None:
    path = tmp_path / APPROVED_FILE
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="eimzo_agent.policy.approved_store"):
        gate = make_gate(path)
    assert gate.approved_sites() == []
    assert not gate.is_allowed(PORTAL_PAGE)
    assert str(path) in caplog.text
    # Approving again repairs the file.
    gate.install_keys([(TEST_PORTAL, PUBLISHED[TEST_PORTAL])], PORTAL_PAGE)
    assert make_gate(path).is_allowed(PORTAL_PAGE)


def test_malformed_entries_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / APPROVED_FILE
    path.write_text(json.dumps({"version": 1, "domains": [TEST_PORTAL, 42, "evil example", "", "UPPER.uz"]}))
    with caplog.at_level(logging.WARNING):
        gate = make_gate(path)
    assert gate.approved_sites() == [f"https://{TEST_PORTAL}"]
    assert "evil example" in caplog.text


def test_unwritable_store_logs_and_keeps_the_approval(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    with caplog.at_level(logging.WARNING):
        gate = make_gate(blocker / APPROVED_FILE)
        assert gate.install_keys([(TEST_PORTAL, PUBLISHED[TEST_PORTAL])], PORTAL_PAGE) == []
    assert gate.is_allowed(PORTAL_PAGE)
    assert "cannot save" in caplog.text


# --- the real agent --------------------------------------------------------------------------------------------


def test_apikey_approves_the_portal_and_survives_a_restart(tmp_path: Path) -> None:
    portal, other = f"https://{TEST_PORTAL}", "https://other.example"
    agent = start_agent(tmp_path / "agent")
    try:
        refused = agent.call("list_disks", plugin="pfx", origin=portal)
        # No askpass and no screen here: the reason says that nobody can be asked (tests/test_headless.py).
        assert refused == {"success": False, "status": -1022,
                           "reason": f"Сайт {portal} не предъявил действительный API-ключ E-IMZO, поэтому ему "
                                     "нужно разрешение пользователя этого компьютера, но агент подписи не может "
                                     "его спросить: он запущен без экрана для своего окна и без программы askpass. "
                                     "Запустите агент в своём сеансе рабочего стола или попросите администратора "
                                     "настроить программу askpass."}

        reply = agent.call("apikey", TEST_PORTAL, PUBLISHED[TEST_PORTAL], origin=portal)
        assert reply == {"success": True, "status": 1, "message": portal}
        assert agent.call("list_disks", plugin="pfx", origin=portal) == {"success": True, "status": 1, "disks": []}

        # Another site sending the portal's (public) key gains nothing: the gate looks at the caller's Origin.
        assert agent.call("apikey", TEST_PORTAL, PUBLISHED[TEST_PORTAL], origin=other)["success"] is True
        assert agent.call("list_disks", plugin="pfx", origin=other)["status"] == -1022
        wrong = agent.call("apikey", "other.example", PUBLISHED[TEST_PORTAL], origin=other)
        assert wrong == {"success": False, "status": -1020,
                         "reason": "API-ключ для домена other.example недействителен."}
        assert agent.call("list_disks", plugin="pfx", origin=other)["status"] == -1022
    finally:
        agent.stop()

    restarted = start_agent(tmp_path / "agent-again")  # same XDG_DATA_HOME: the harness passes our environment
    try:
        assert restarted.call("list_disks", plugin="pfx", origin=portal)["success"] is True
        assert restarted.call("list_disks", plugin="pfx", origin=other)["status"] == -1022
    finally:
        restarted.stop()
