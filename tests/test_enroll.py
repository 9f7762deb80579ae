"""Getting a new key through the real agent, as a registration portal does: pkcs10.*, pki.enroll_pfx_step1/2,
pfx.save_pfx and pfx.save_temporary_pfx over real WebSocket calls, the person answering through askpass.

The CA's side is `eimzo_agent.dev.registration.issue_for_csr` (the dev CAs). What lands on disk is checked by
readers that are not the enrollment code: our key-file listing and signing (list_all_certificates, load_key,
create_pkcs7, verified with `verify_cms` and, for O'zDSt, gostcrypto) and OpenSSL's `pkcs12 -info`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess, Askpass, b64, make_askpass, start_agent
from asn1crypto import cms as asn1_cms
from asn1crypto import x509 as asn1_x509
from test_ozdst_e2e import signature_is_valid

from eimzo_agent.crypto.cms_verify import verify_cms
from eimzo_agent.crypto.pkcs10 import request_policies
from eimzo_agent.dev.registration import issue_for_csr
from eimzo_agent.keys.alias import build_alias

NEW_PASSWORD = "Yangi-Parol-2026"
SUBJECT = "CN=ALIYEV VALI,Name=VALI,SURNAME=ALIYEV,UID=512345678,1.2.860.3.16.1.2=31234567890123,C=UZ"
POLICIES = "1.2.860.3.2.2.1.1.2"
DATA = "Ro'yxatdan o'tish arizasi № 7".encode()
OTHER_ORIGIN = "http://127.0.0.1:8080"


@dataclass
class Setup:
    root: Path
    ca: Path
    journal: Path
    askpass: Askpass
    agent: AgentProcess

    def call(self, plugin: str, name: str, *args: str, **kw: Any) -> dict[str, Any]:
        return self.agent.call(name, *args, plugin=plugin, **kw)  # type: ignore[no-any-return]

    def disk(self) -> str:
        return str(self.call("pfx", "list_disks")["disks"][0])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("enroll")
    root = tmp / "flash"
    root.mkdir()
    askpass = make_askpass(tmp)
    journal = Path(os.environ["XDG_DATA_HOME"]) / "eimzo-agent" / "journal.jsonl"
    agent = start_agent(tmp / "agent", "--key-root", str(root), "--askpass", str(askpass.program))
    try:
        yield Setup(root, tmp / "ca", journal, askpass, agent)
    finally:
        agent.stop()


@pytest.fixture(autouse=True)
def usual_answers(setup: Setup) -> None:
    person_answers(setup)


def person_answers(setup: Setup) -> None:
    """The person picks the first disk and types a good new password twice (as every test expects unless it
    says otherwise); the "password" answer is the new key's, for signing with it afterwards."""
    setup.askpass.clear()
    setup.askpass.answer("1", "choose_disk")
    setup.askpass.answer(NEW_PASSWORD, "new_password")
    setup.askpass.answer(NEW_PASSWORD, "repeat_new_password")
    setup.askpass.answer(NEW_PASSWORD)


def step1(setup: Setup, guid: str, alg: str, file_name: str, *, subject: str = SUBJECT,
          cp_list: str = POLICIES, data: bytes = DATA, **kw: Any) -> dict[str, Any]:
    return setup.call("pki", "enroll_pfx_step1", guid, alg, "seed-from-the-page", subject, cp_list, file_name,
                      b64(data), **kw)


def step2(setup: Setup, guid: str, chain: tuple[bytes, bytes, bytes], *, data: bytes = DATA,
          **kw: Any) -> dict[str, Any]:
    return setup.call("pki", "enroll_pfx_step2", guid, *(b64(c) for c in chain), b64(data), **kw)


def issue(setup: Setup, pkcs10_64: str) -> tuple[bytes, bytes, bytes]:
    issued = issue_for_csr(setup.ca, base64.b64decode(pkcs10_64))
    return issued.subject, issued.ca, issued.root


def files(setup: Setup) -> set[str]:
    return {str(p.relative_to(setup.root)) for p in setup.root.rglob("*") if p.is_file()}


def sign_with(setup: Setup, file_stem: str) -> tuple[bytes, list[asn1_x509.Certificate]]:
    entries = [c for c in setup.call("pfx", "list_all_certificates")["certificates"] if c["name"] == file_stem]
    assert len(entries) == 1, entries
    e = entries[0]
    loaded = setup.call("pfx", "load_key", e["disk"], e["path"], e["name"], e["alias"])
    assert loaded["success"] is True, loaded
    signed = setup.call("pkcs7", "create_pkcs7", b64(DATA), loaded["keyId"], "no")
    assert signed["success"] is True, signed
    cms = base64.b64decode(signed["pkcs7_64"])
    return cms, [c.chosen for c in asn1_cms.ContentInfo.load(cms)["content"]["certificates"]]


def openssl_info(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "pkcs12", "-info", "-legacy", "-nokeys", "-in", str(path),
                           "-passin", f"pass:{NEW_PASSWORD}", *extra],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(("alg", "file_name"), [("OZMST-286-2024-2", "DS312345678901230001"),
                                                ("OZDST-1092-2009-2", "DS312345678901230002"),
                                                ("RSA-2048", "DS312345678901230003")])
def test_enrollment_writes_a_key_that_signs(setup: Setup, alg: str, file_name: str) -> None:
    guid = f"guid-{file_name}"
    first = step1(setup, guid, alg, file_name)
    assert first["success"] is True, first
    assert set(first) == {"success", "status", "guid", "pkcs10_64", "pkcs7_64"}  # never the new password
    assert first["guid"] == guid
    info = setup.call("pkcs10", "get_pkcs10_info", first["pkcs10_64"])
    assert info["pkcs10_info"]["verified"] is True and info["pkcs10_info"]["subjectName"] == SUBJECT
    assert info["pkcs10_info"]["publicKey"]["keyAlgName"] == alg.split("-2048")[0]
    assert request_policies(base64.b64decode(first["pkcs10_64"])) == (POLICIES,)
    # pkcs7_64 of step 1: data_64 signed by the new key (with a temporary self-signed certificate).
    assert verify_cms(base64.b64decode(first["pkcs7_64"])).signers[0].signature_valid
    assert [q.split()[0] for q in setup.askpass.questions()] == ["choose_disk", "new_password",
                                                                 "repeat_new_password"]
    assert not any(p.endswith(f"{file_name}.pfx") for p in files(setup))  # nothing written before step 2

    chain = issue(setup, first["pkcs10_64"])
    second = step2(setup, guid, chain)
    assert second["success"] is True, second
    assert set(second) == {"success", "status", "guid", "pkcs7_64", "alias"}
    subject = asn1_x509.Certificate.load(chain[0])
    assert second["alias"] == build_alias(subject) and second["alias"] == second["alias"].lower()
    assert "serialnumber=" in second["alias"] and "validfrom=" in second["alias"]
    written = setup.root / "DSKEYS" / f"{file_name}.pfx"
    assert written.is_file() and (written.stat().st_mode & 0o777) == 0o600
    proof = verify_cms(base64.b64decode(second["pkcs7_64"]), trust_anchors=[chain[2]])
    assert proof.signers[0].signature_valid and proof.signers[0].chain_valid, proof

    # The file: listed with its alias, loads, and signs with the new password (asked through askpass).
    cms, embedded = sign_with(setup, file_name)
    assert chain[0] in [c.dump() for c in embedded]
    verified = verify_cms(cms, trust_anchors=[chain[2]])
    assert verified.signers[0].signature_valid and verified.signers[0].chain_valid, verified
    if alg.startswith("OZ"):
        signer = asn1_cms.ContentInfo.load(cms)["content"]["signer_infos"][0]
        assert signature_is_valid(DATA, signer["signed_attrs"].untag().dump(), signer["signature"].native,
                                  subject)
    # OpenSSL reads the container: MAC (HMAC-SHA1), the 3DES-encrypted certificates, the friendlyName.
    result = openssl_info(written)
    assert result.returncode == 0, result.stderr
    assert f"friendlyName: {second['alias']}" in result.stdout
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in result.stdout + result.stderr
    assert result.stdout.count("BEGIN CERTIFICATE") == 2  # the key's certificate and the dev CA (= root)

    # The same guid is finished: a second step 2 is refused and writes nothing.
    again = step2(setup, guid, chain)
    assert again["status"] == -2025, again


def test_journal_records_enrollments(setup: Setup) -> None:
    first = step1(setup, "journal-guid", "EC-P256", "DSJOURNAL1")
    step2(setup, "journal-guid", issue(setup, first["pkcs10_64"]))
    entries = [json.loads(line) for line in setup.journal.read_text().splitlines()]
    mine = [e for e in entries if e["operation"].startswith("pki.") and e["owner"] == "ALIYEV VALI"]
    assert [e["result"] for e in mine][-2:] == ["requested", "enrolled"]
    assert mine[-1]["certificate_serial"] and NEW_PASSWORD not in setup.journal.read_text()


def test_pkcs10_functions(setup: Setup) -> None:
    made = setup.call("pkcs10", "generate_keypair", "ozdst-1092-2009-2", "any seed")
    assert set(made) == {"success", "status", "kpId", "type"} and made["type"] == "KEY_PAIR"
    assert len(made["kpId"]) == 32
    # Optional trailing arguments may be left out (seed; cp_list).
    other = setup.call("pkcs10", "generate_keypair", "EC-P256")
    assert other["success"] is True, other
    request = setup.call("pkcs10", "create_pkcs10", made["kpId"], SUBJECT, POLICIES)
    assert set(request) == {"success", "status", "pkcs10_64"}
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n" + request["pkcs10_64"] + "\n-----END CERTIFICATE REQUEST-----"
    info = setup.call("pkcs10", "get_pkcs10_info", pem)
    assert info["pkcs10_64"] == request["pkcs10_64"]
    assert set(info["pkcs10_info"]) == {"subjectName", "publicKey", "signature", "verified"}
    assert setup.call("pkcs10", "create_pkcs10", other["kpId"], "CN=X")["success"] is True
    # The same seed twice still gives two different keys: seed never drives generation.
    keys = {setup.call("pkcs10", "get_pkcs10_info", setup.call(
        "pkcs10", "create_pkcs10", setup.call("pkcs10", "generate_keypair", "EC-P256", "SAME")["kpId"], "CN=X")[
        "pkcs10_64"])["pkcs10_info"]["publicKey"]["publicKey"] for _ in range(2)}
    assert len(keys) == 2


def test_pkcs10_errors(setup: Setup) -> None:
    kp = setup.call("pkcs10", "generate_keypair", "EC-P256")["kpId"]
    cases = [
        (("generate_keypair", "GOST-2012"), -9999, "GOST-2012 (OZDST-1092-2009-2, OZMST-286-2024-2, RSA-2048"),
        (("create_pkcs10", "0" * 32, "CN=X"), -1011, None),
        (("create_pkcs10", kp, "CN=X,FOO=1"), -9999, "FOO"),
        (("create_pkcs10", kp, "CN=X", "1.2.abc"), -2023, None),
        (("get_pkcs10_info", "bm90IGEgcmVxdWVzdA=="), -1028, None),
        (("create_pkcs10_from_key", "0" * 32), -1010, None),
    ]
    for (name, *args), status, reason in cases:
        reply = setup.call("pkcs10", name, *args)
        assert reply["success"] is False and reply["status"] == status, (name, reply)
        assert reason is None or reason in reply["reason"], reply
    # Another site cannot use this site's key pair.
    stolen = setup.call("pkcs10", "create_pkcs10", kp, "CN=X", origin=OTHER_ORIGIN)
    assert stolen["status"] == -1011, stolen


def test_request_from_a_loaded_key(setup: Setup) -> None:
    first = step1(setup, "from-key", "OZDST-1092-2009-2", "DSFROMKEY1")
    step2(setup, "from-key", issue(setup, first["pkcs10_64"]))
    e = next(c for c in setup.call("pfx", "list_all_certificates")["certificates"] if c["name"] == "DSFROMKEY1")
    key_id = setup.call("pfx", "load_key", e["disk"], e["path"], e["name"], e["alias"])["keyId"]
    setup.askpass.clear()
    same = setup.call("pkcs10", "create_pkcs10_from_key", key_id)
    assert same["success"] is True, same
    assert setup.askpass.questions() == [f"password 1 {setup.agent.origin}"]  # the key's password was asked
    info = setup.call("pkcs10", "get_pkcs10_info", same["pkcs10_64"])["pkcs10_info"]
    assert info["verified"] is True and info["subjectName"] == SUBJECT
    replaced = setup.call("pkcs10", "create_pkcs10_from_key", key_id, "CN=ALIYEV VALI,C=UZ", POLICIES)
    assert setup.call("pkcs10", "get_pkcs10_info", replaced["pkcs10_64"])["pkcs10_info"]["subjectName"] == \
        "CN=ALIYEV VALI,C=UZ"
    # Re-certification: the new certificate for the same key, saved as a new file next to the old one.
    subject, ca, root = issue(setup, replaced["pkcs10_64"])
    saved = setup.call("pfx", "save_pfx", e["disk"], "DSKEYS", "DSRENEWED1", "", key_id, NEW_PASSWORD,
                       b64(subject), b64(ca), b64(root))
    assert saved == {"success": True, "status": 1}, saved
    _, embedded = sign_with(setup, "DSRENEWED1")
    assert subject in [c.dump() for c in embedded]


def test_step1_refusals_write_nothing(setup: Setup) -> None:
    before = files(setup)
    cases = [
        ({"alg": "NOPE-1"}, -9999),
        ({"subject": "CN=X,,C=UZ"}, -9999),
        ({"cp_list": ""}, -1023),
        ({"cp_list": "1.2.3,policy"}, -2023),
        ({"file_name": "../evil"}, -1003),
        ({"file_name": "DS 1"}, -1003),
    ]
    for change, status in cases:
        args = {"guid": "refused", "alg": "EC-P256", "file_name": "DSREFUSED1", **change}
        reply = step1(setup, args.pop("guid"), args.pop("alg"), args.pop("file_name"), **args)
        assert reply["success"] is False and reply["status"] == status, (change, reply)
    assert setup.askpass.questions() == []  # bad input is refused before the person is asked anything
    # The person's answers: a weak password, passwords that differ, cancel, a disk number that does not exist.
    for kind, answer, status in [("new_password", "weakpass", -9999), ("repeat_new_password", "Other-Parol-2026",
                                                                         -5004),
                                 ("choose_disk", "CANCEL", -5001), ("choose_disk", "9", -2011),
                                 ("new_password", "CANCEL", -5000)]:
        person_answers(setup)
        if kind == "new_password" and answer != "CANCEL":
            setup.askpass.answer(answer, "repeat_new_password")
        setup.askpass.answer(answer, kind)
        reply = step1(setup, "refused", "EC-P256", "DSREFUSED1")
        assert reply["success"] is False and reply["status"] == status, (kind, answer, reply)
    assert files(setup) == before
    person_answers(setup)
    assert step1(setup, "refused", "EC-P256", "DSREFUSED1")["success"] is True  # the guid is free after refusals


def test_step2_refusals_write_nothing(setup: Setup) -> None:
    first = step1(setup, "mismatch", "OZMST-286-2024-2", "DSMISMATCH1")
    other = step1(setup, "other-key", "OZMST-286-2024-2", "DSMISMATCH2")
    good = issue(setup, first["pkcs10_64"])
    wrong = issue(setup, other["pkcs10_64"])
    before = files(setup)
    assert step2(setup, "mismatch", wrong)["status"] == -2020  # a certificate for another key
    rsa_chain = issue(setup, step1(setup, "rsa", "RSA-2048", "DSRSA0001")["pkcs10_64"])
    assert step2(setup, "mismatch", (good[0], rsa_chain[1], rsa_chain[2]))["status"] == -2021  # wrong CA
    assert step2(setup, "no-such-guid", good)["status"] == -2025
    assert step2(setup, "mismatch", good, origin=OTHER_ORIGIN)["status"] == -2025  # another site's guid
    bad = setup.call("pki", "enroll_pfx_step2", "mismatch", "bm90", b64(good[1]), b64(good[2]), "")
    assert bad["success"] is False and bad["status"] == -9999
    assert files(setup) == before
    # Still waiting after the refusals: the right certificate completes it.
    assert step2(setup, "mismatch", good)["success"] is True


def test_existing_file_is_never_overwritten(setup: Setup) -> None:
    existing = setup.root / "DSKEYS" / "DSEXISTS1.pfx"
    existing.parent.mkdir(exist_ok=True)
    existing.write_bytes(b"someone's key")
    assert step1(setup, "exists", "EC-P256", "DSEXISTS1")["status"] == -2012
    first = step1(setup, "exists-later", "EC-P256", "DSEXISTS2")
    (setup.root / "DSKEYS" / "DSEXISTS2.pfx").write_bytes(b"appeared in between")
    assert step2(setup, "exists-later", issue(setup, first["pkcs10_64"]))["status"] == -2012
    assert existing.read_bytes() == b"someone's key"
    assert (setup.root / "DSKEYS" / "DSEXISTS2.pfx").read_bytes() == b"appeared in between"
    assert not [p for p in (setup.root / "DSKEYS").iterdir() if ".eimzo-tmp-" in p.name]


def test_save_pfx_and_save_temporary_pfx(setup: Setup) -> None:
    disk = setup.disk()
    kp = setup.call("pkcs10", "generate_keypair", "OZDST-1092-2009-2")["kpId"]
    request = setup.call("pkcs10", "create_pkcs10", kp, SUBJECT, POLICIES)["pkcs10_64"]
    subject, ca, root = issue(setup, request)
    args = [disk, "DSKEYS", "DSSAVED1", "", kp]
    weak = setup.call("pfx", "save_pfx", *args, "weak", b64(subject), b64(ca), b64(root))
    assert weak["status"] == -9999 and not (setup.root / "DSKEYS" / "DSSAVED1.pfx").exists()
    other_kp = setup.call("pkcs10", "generate_keypair", "OZDST-1092-2009-2")["kpId"]
    mismatch = setup.call("pfx", "save_pfx", disk, "", "DSSAVED1", "", other_kp, NEW_PASSWORD, b64(subject), "",
                          "")
    assert mismatch["status"] == -2020
    saved = setup.call("pfx", "save_pfx", *args, NEW_PASSWORD, b64(subject), b64(ca), b64(root))
    assert saved == {"success": True, "status": 1}
    again = setup.call("pfx", "save_pfx", *args, NEW_PASSWORD, b64(subject), b64(ca), b64(root))
    assert again["status"] in (-1004, -1011), again  # the pair is used up; the file stays
    _, embedded = sign_with(setup, "DSSAVED1")
    assert subject in [c.dump() for c in embedded]

    temp_kp = setup.call("pkcs10", "generate_keypair", "RSA-2048")["kpId"]
    temporary = setup.call("pfx", "save_temporary_pfx", disk, "", "DSTEMP1", "", temp_kp, NEW_PASSWORD,
                           "CN=VAQTINCHA,C=UZ")
    assert temporary == {"success": True, "status": 1}
    assert (setup.root / "DSTEMP1.pfx").is_file()
    assert setup.call("pfx", "save_temporary_pfx", disk, "", "DSTEMP1", "", temp_kp, NEW_PASSWORD,
                      "CN=VAQTINCHA,C=UZ")["status"] == -2009
    _, embedded = sign_with(setup, "DSTEMP1")
    assert len(embedded) == 1 and embedded[0].issuer == embedded[0].subject  # self-signed
    assert openssl_info(setup.root / "DSTEMP1.pfx").returncode == 0


def test_no_disk_is_5003(tmp_path: Path) -> None:
    askpass = make_askpass(tmp_path)
    agent = start_agent(tmp_path / "agent", "--key-root", str(tmp_path / "gone"), "--askpass",
                        str(askpass.program))
    try:
        reply = agent.call("enroll_pfx_step1", "g", "EC-P256", "", "CN=X", POLICIES, "DSX1", "", plugin="pki")
    finally:
        agent.stop()
    assert reply["status"] == -5003, reply
    assert askpass.questions() == []


def test_new_key_file_never_replaces_anything(tmp_path: Path) -> None:
    from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
    from eimzo_agent.keys.new_key_file import write_new_key_file

    victim = tmp_path / "victim.pfx"
    victim.write_bytes(b"precious")
    link = tmp_path / "DSKEYS" / "LINK.pfx"
    link.parent.mkdir()
    link.symlink_to(victim)
    with pytest.raises(KeyStoreError) as exists:
        write_new_key_file(link, b"new")
    assert exists.value.kind is KeyErrorKind.FILE_EXISTS and victim.read_bytes() == b"precious"
    # A pulled-out flash drive: its mount point's folders are not re-created on the system disk.
    with pytest.raises(KeyStoreError) as gone:
        write_new_key_file(tmp_path / "media" / "FLASH" / "DSKEYS" / "NEW.pfx", b"new")
    assert gone.value.kind is KeyErrorKind.WRITE_FAILED and not (tmp_path / "media").exists()
    write_new_key_file(tmp_path / "DSKEYS" / "NEW.pfx", b"new")
    assert (tmp_path / "DSKEYS" / "NEW.pfx").read_bytes() == b"new"
    assert sorted(p.name for p in (tmp_path / "DSKEYS").iterdir()) == ["LINK.pfx", "NEW.pfx"]  # no temporary left


@pytest.mark.parametrize("language", ["ru", "uz", "kaa", "en"])
def test_enrollment_questions_read_properly(language: str) -> None:
    from eimzo_agent import i18n
    from eimzo_agent.ui.prompter import PromptRequest

    t = lambda key: i18n.text(language, "prompt", key)  # noqa: E731
    disks = ("/media/vali/FLASH/", "/home/vali/DSKEYS/")
    for kind, heading in (("choose_disk", "choose_disk"), ("enroll", "enroll_heading")):
        request = PromptRequest(kind=kind, site="https://ca.example.uz", key_label="ALIYEV VALI",  # type: ignore[arg-type]
                                operation="enroll", language=language, choices=disks)
        assert request.heading() == t(heading)
        text = request.text()
        assert "1. /media/vali/FLASH/" in text and "2. /home/vali/DSKEYS/" in text and "https://ca.example.uz" in text
        assert "ALIYEV VALI" in text and t("op_enroll") in text
    assert t("choose_disk_askpass") in PromptRequest(kind="choose_disk", site="s", key_label="k", operation="enroll",
                                                     language=language, choices=disks).text()
    new = PromptRequest(kind="new_password", site="s", key_label="ALIYEV VALI", operation="enroll", language=language)
    assert new.heading() == t("new_password") and t("op_enroll") in new.text()
