"""Writing new keys to disk: E-IMZO's "get a key online" (pki.enroll_pfx_step1/2) and pfx.save_pfx /
save_temporary_pfx.

Enrollment in two steps, as E-IMZO does it: step 1 makes a key pair, a PKCS#10 request for the page to send to
its CA, and asks the person (never the page) where the key goes and its new password; step 2 takes the CA's
answer, checks it (the certificate holds the pending key, the CA signed it, the root signed the CA) and writes
`<disk>/DSKEYS/<file_name>.pfx` with E-IMZO's alias, in the legacy PKCS#12 layout every E-IMZO reads, never over
an existing file. Between the steps the key and the chosen password stay in memory only (at most the key pair's
lifetime, 1 hour): E-IMZO sends the new password back to the page in step 1; we deliberately do not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509

from eimzo_agent import i18n
from eimzo_agent.crypto import cms, new_keys
from eimzo_agent.crypto.ozdst_keys import OzdstPrivateKey, OzdstSigner
from eimzo_agent.crypto.pkcs10 import create_pkcs10
from eimzo_agent.crypto.signer import CryptographySigner
from eimzo_agent.crypto.x509_info import (
    AlgorithmError,
    CertificateError,
    format_name,
    issued_by,
    load_certificate,
    spki_der,
    verify_certificate_signature,
)
from eimzo_agent.keys import password_rules
from eimzo_agent.keys.alias import build_alias
from eimzo_agent.keys.disks import DSKEYS, Disk
from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.keypairs import KeyPairs
from eimzo_agent.keys.new_key_file import write_new_key_file
from eimzo_agent.keys.pkcs12 import serialize_pfx
from eimzo_agent.keys.sessions import KeySessions
from eimzo_agent.plugins.keyuse import PFX_KEY_STORE, KeyUnlocker, eimzo_error
from eimzo_agent.plugins.pfx import DiskSource
from eimzo_agent.plugins.pkcs7 import decode_base64
from eimzo_agent.plugins.pkcs10 import b64, generate_key, policies, subject_name
from eimzo_agent.policy.asking import ask_person, refused
from eimzo_agent.policy.journal import Journal, JournalEntry, now_utc
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompt_queue import PromptRefused
from eimzo_agent.ui.prompter import EnrollPrompter, Prompter, PromptRequest

#: E-IMZO's rule for new key file names (case-insensitive here: "ds3132964550001" is as harmless).
_FILE_NAME = re.compile(r"[A-Za-z0-9]{1,64}")
#: Enrollments one origin may have waiting at once (each holds a private key in memory).
MAX_PENDING_PER_ORIGIN = 16


@dataclass
class _Pending:
    kp_id: str
    folder: Path
    file_name: str
    password: str = field(repr=False)
    owner: str = ""


def _key_file_name(name: str) -> str:
    if not _FILE_NAME.fullmatch(name):
        raise EimzoError(Status.FILE_NAME_INVALID, "file_name_invalid")
    return name


def _new_key_folder(disk: Disk) -> Path:
    """`<disk>/DSKEYS`, or the disk itself when it already is a DSKEYS folder (list_disks offers both)."""
    return disk.root if disk.root.name.upper() == DSKEYS else disk.root / DSKEYS


def _find_disk(disks: list[Disk], label: str) -> Disk:
    disk = next((d for d in disks if label in (d.label, d.label.rstrip("/\\"))), None)
    if disk is None:
        raise EimzoError(Status.DISK_NOT_FOUND, "disk_not_found")
    return disk


def _certificate(call: Call, argument: str) -> asn1_x509.Certificate:
    try:
        return load_certificate(decode_base64(call.arg(argument), argument))
    except CertificateError:
        raise EimzoError(Status.OTHER, "certificate_invalid", argument=argument) from None


def _check_chain(subject: asn1_x509.Certificate, *issuers: asn1_x509.Certificate) -> None:
    """Each certificate issued (name and signature) by the next one; -2021 naming the broken link."""
    chain = [subject, *issuers]
    for child, parent in itertools.pairwise(chain):
        try:
            ok = issued_by(child, parent) and verify_certificate_signature(child, parent)
        except AlgorithmError as exc:
            raise EimzoError(Status.CERTIFICATE_CHAIN_INVALID, "certificate_chain_invalid", detail=str(exc)) from None
        if not ok:
            detail = f"{format_name(child.subject)} is not signed by {format_name(parent.subject)}"
            raise EimzoError(Status.CERTIFICATE_CHAIN_INVALID, "certificate_chain_invalid", detail=detail)


def _chain_for_file(*certificates: asn1_x509.Certificate | None) -> list[asn1_x509.Certificate]:
    """The CA certificates to store beside the key: given ones, each once (a CA that is its own root)."""
    seen: set[bytes] = set()
    chain = []
    for cert in certificates:
        if cert is not None and cert.dump() not in seen:
            seen.add(cert.dump())
            chain.append(cert)
    return chain


def _signer(key: new_keys.PrivateKey, certificate: asn1_x509.Certificate,
            chain: list[asn1_x509.Certificate]) -> OzdstSigner | CryptographySigner:
    if isinstance(key, OzdstPrivateKey):
        return OzdstSigner(key, certificate, tuple(chain))
    return CryptographySigner(key, certificate, tuple(chain))


def _sign_data(data: bytes, signer: OzdstSigner | CryptographySigner) -> str:
    """An attached CMS of `data` by the new key ("" when the page sent no data)."""
    if not data:
        return ""
    return b64(cms.create_pkcs7(data, signer, detached=False, signed_attributes=signer.cms_profile).cms_der)


def _common_name(name: asn1_x509.Name) -> str:
    """The CN for the journal and the dialog (the whole name when it has none)."""
    try:
        common_name = name.native.get("common_name")
    except (ValueError, TypeError, KeyError, AttributeError):
        common_name = None
    return str(common_name) if common_name else format_name(name)


def _owner(certificate: asn1_x509.Certificate) -> tuple[str, str]:
    return format(certificate.serial_number, "x"), _common_name(certificate.subject)


class EnrollPlugin:
    """pki.enroll_pfx_step1/2, pfx.save_pfx, pfx.save_temporary_pfx."""

    def __init__(self, *, disks: DiskSource, keypairs: KeyPairs, sessions: KeySessions, unlocker: KeyUnlocker,
                 prompter: Prompter, journal: Journal | None) -> None:
        self.disks = disks
        self.keypairs = keypairs
        self.sessions = sessions
        self.unlocker = unlocker
        self.prompter = prompter
        self.journal = journal
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._lock = threading.Lock()

    def functions(self) -> list[PluginFunction]:
        disk, path = Argument("disk", "Диск"), Argument("path", "Папка: '' или 'DSKEYS'")
        name, alias = Argument("name", "Имя PFX-файла без расширения"), Argument("alias", "Алиас ключа")
        key_id = Argument("id", "Идентификатор ключевой пары (kpId) или загруженного ключа")
        guid = Argument("guid", "Идентификатор заявки")
        certificates = (Argument("subject_certificate_64", "Сертификат ключа в кодировке Base64"),
                        Argument("ca_certificate_64", "Сертификат УЦ в кодировке Base64"),
                        Argument("root_certificate_64", "Корневой сертификат в кодировке Base64"))
        return [
            PluginFunction("pfx", "save_pfx", self.save_pfx,
                           (disk, path, name, alias, key_id,
                            Argument("new_key_password", "Пароль нового PFX-файла"), *certificates),
                           "Сохранить ключевую пару с сертификатами в новый PFX-файл"),
            PluginFunction("pfx", "save_temporary_pfx", self.save_temporary_pfx,
                           (disk, path, name, alias, key_id, Argument("password", "Пароль нового PFX-файла"),
                            Argument("subject_x500_name", "Имя субъекта X.500 самоподписанного сертификата")),
                           "Сохранить ключевую пару с временным самоподписанным сертификатом в PFX-файл"),
            PluginFunction("pki", "enroll_pfx_step1", self.enroll_pfx_step1,
                           (guid, Argument("alg_name", "Алгоритм ключа, например 'OZMST-286-2024-2'"),
                            Argument("seed", "Источник случайности (не используется)"),
                            Argument("subject_x500_name", "Имя субъекта X.500"),
                            Argument("cp_list", "Список OID политик сертификата через запятую"),
                            Argument("file_name", "Имя нового PFX-файла без расширения"),
                            Argument("data_64", "Данные для подписи новым ключом в кодировке Base64")),
                           "Шаг 1 получения ключа: создать ключевую пару и запрос PKCS#10, выбрать диск и пароль"),
            PluginFunction("pki", "enroll_pfx_step2", self.enroll_pfx_step2,
                           (guid, *certificates,
                            Argument("data_64", "Данные для подписи новым ключом в кодировке Base64")),
                           "Шаг 2 получения ключа: сохранить ключ с выданным сертификатом в PFX-файл"),
        ]

    # ----------------------------------------------------------------------------------------------------------
    # pki

    async def enroll_pfx_step1(self, call: Call) -> dict[str, Any]:
        origin = call.caller.origin
        guid = call.arg("guid").strip()
        if origin is None or not guid:
            raise EimzoError(Status.GUID_UNKNOWN, "guid_unknown")
        with self._lock:
            if (origin, guid) in self._pending:
                raise EimzoError(Status.GUID_IN_USE, "guid_in_use")
        # Everything the page sent is checked before the person is asked anything. `seed` is ignored.
        subject = subject_name(call.arg("subject_x500_name"))
        oids = policies(call.arg("cp_list"), required=True)
        file_name = _key_file_name(call.arg("file_name").strip())
        data = decode_base64(call.arg("data_64"), "data_64")
        alg_name = call.arg("alg_name").strip().upper()
        key = await generate_key(alg_name)
        request = await asyncio.to_thread(create_pkcs10, key, subject, oids)
        owner = _common_name(asn1_x509.Name.load(subject))
        try:
            disk, password = await self._ask_disk_and_password(call, owner)
            folder = _new_key_folder(disk)
            if (folder / f"{file_name}.pfx").exists():
                raise EimzoError(Status.KEY_FILE_EXISTS, "key_file_exists", name=file_name)
            temporary = await asyncio.to_thread(new_keys.self_signed_certificate, key, subject, days=1)
            pkcs7_64 = await asyncio.to_thread(_sign_data, data, _signer(key, temporary, []))
        except EimzoError as exc:
            self._journal(call, "pki.enroll_pfx_step1", f"failed:{exc.status}", "", owner, data)
            raise
        kp_id = self.keypairs.add(key, alg_name, origin)
        with self._lock:
            if (origin, guid) in self._pending:  # the same guid, twice at once
                self.keypairs.remove(kp_id, origin)
                raise EimzoError(Status.GUID_IN_USE, "guid_in_use")
            same_origin = [k for k in self._pending if k[0] == origin]
            for old in same_origin[:len(same_origin) + 1 - MAX_PENDING_PER_ORIGIN]:
                self.keypairs.remove(self._pending.pop(old).kp_id, origin)
            self._pending[(origin, guid)] = _Pending(kp_id, folder, file_name, password, owner)
        self._journal(call, "pki.enroll_pfx_step1", "requested", "", owner, data)
        return {"guid": guid, "pkcs10_64": b64(request), "pkcs7_64": pkcs7_64}

    async def enroll_pfx_step2(self, call: Call) -> dict[str, Any]:
        origin = call.caller.origin or ""
        guid = call.arg("guid").strip()
        with self._lock:
            pending = self._pending.get((origin, guid))
        pair = self.keypairs.get(pending.kp_id, origin) if pending is not None else None
        if pending is None or pair is None:
            with self._lock:
                self._pending.pop((origin, guid), None)  # its key pair expired
            raise EimzoError(Status.GUID_UNKNOWN, "guid_unknown")
        data = decode_base64(call.arg("data_64"), "data_64")
        subject, ca, root = (_certificate(call, a) for a in
                             ("subject_certificate_64", "ca_certificate_64", "root_certificate_64"))
        serial, owner = _owner(subject)
        try:
            if not new_keys.public_key_matches(pair.private_key, spki_der(subject)):
                raise EimzoError(Status.PUBLIC_KEY_MISMATCH, "public_key_mismatch")
            _check_chain(subject, ca, root)
            chain = _chain_for_file(ca, root)
            alias = build_alias(subject)
            target = pending.folder / f"{pending.file_name}.pfx"
            if not await asyncio.to_thread(target.parent.parent.is_dir):  # the flash drive was pulled out
                raise EimzoError(Status.USB_DISK_MISSING, "usb_disk_missing")
            pfx = await asyncio.to_thread(serialize_pfx, pair.private_key, subject, chain, pending.password, alias)
            try:
                await asyncio.to_thread(write_new_key_file, target, pfx)
            except KeyStoreError as exc:
                if exc.kind is KeyErrorKind.FILE_EXISTS:
                    raise EimzoError(Status.KEY_FILE_EXISTS, "key_file_exists", name=pending.file_name) from None
                raise eimzo_error(exc, name=pending.file_name) from None
        except EimzoError as exc:
            self._journal(call, "pki.enroll_pfx_step2", f"failed:{exc.status}", serial, owner, data)
            raise
        with self._lock:
            self._pending.pop((origin, guid), None)
        self.keypairs.remove(pending.kp_id, origin)
        pkcs7_64 = await asyncio.to_thread(_sign_data, data, _signer(pair.private_key, subject, chain))
        self._journal(call, "pki.enroll_pfx_step2", "enrolled", serial, owner, data)
        return {"guid": guid, "pkcs7_64": pkcs7_64, "alias": alias}

    async def _ask_disk_and_password(self, call: Call, owner: str) -> tuple[Disk, str]:
        """The person's choice of disk and new password: one dialog where the prompter has it, else askpass's
        "choose_disk" (a number), "new_password", "repeat_new_password". E-IMZO's password rules are checked here
        for every prompter; no disk at all is E-IMZO's -5003."""
        disks = await asyncio.to_thread(self.disks)
        if not disks:
            raise EimzoError(Status.USB_DISK_MISSING, "usb_disk_missing")
        request = PromptRequest(kind="enroll", site=call.caller.label, key_label=owner, operation="enroll",
                                language=call.language, caller=call.caller,
                                choices=tuple(d.label for d in disks))
        prompter = self.prompter
        if isinstance(prompter, EnrollPrompter) and prompter.supports_enroll:
            try:
                choice = await prompter.ask_enroll(request)
            except PromptRefused as exc:
                raise refused(exc) from None
            if choice is None:
                raise EimzoError(Status.OPERATION_CANCELLED, "operation_cancelled")
            disk, password, repeated = _find_disk(disks, choice.disk), choice.password, choice.password
        else:
            answer = await ask_person(prompter, dataclasses.replace(request, kind="choose_disk"))
            if answer is None:
                raise EimzoError(Status.OPERATION_CANCELLED, "operation_cancelled")
            number = answer.strip()
            if not number.isdigit() or not 1 <= int(number) <= len(disks):
                raise EimzoError(Status.DISK_NOT_FOUND, "disk_not_found")
            disk = disks[int(number) - 1]
            password, repeated = await self._ask_new_password(request)
        if password != repeated or not password:
            raise EimzoError(Status.NEW_PASSWORDS_MISMATCH, "new_passwords_mismatch")
        _check_password(call, password)
        return disk, password

    async def _ask_new_password(self, request: PromptRequest) -> tuple[str, str]:
        answers = []
        for kind in ("new_password", "repeat_new_password"):
            answer = await ask_person(self.prompter, dataclasses.replace(request, kind=kind, choices=()))
            if answer is None:
                raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")
            answers.append(str(answer))
        return answers[0], answers[1]

    # ----------------------------------------------------------------------------------------------------------
    # pfx

    async def save_pfx(self, call: Call) -> dict[str, Any]:
        target = await self._target(call)
        password = call.arg("new_key_password")
        _check_password(call, password)
        subject = _certificate(call, "subject_certificate_64")
        issuers = [_certificate(call, a) for a in ("ca_certificate_64", "root_certificate_64") if call.arg(a).strip()]
        kp_id = call.arg("id")
        pair = self.keypairs.get(kp_id, call.caller.origin)
        if pair is not None:
            key = pair.private_key
        else:  # a loaded key file: re-certification of the same key (its password is asked, as for signing)
            loaded = self.sessions.get(kp_id, call.caller.origin)
            if loaded is None or loaded.store_type != PFX_KEY_STORE:
                raise EimzoError(Status.KEYPAIR_NOT_FOUND, "keypair_not_found")
            opened, _ = await self.unlocker.open(call, loaded, "certificate_request")
            key = opened.signer.private_key
        if not new_keys.public_key_matches(key, spki_der(subject)):
            raise EimzoError(Status.PUBLIC_KEY_MISMATCH, "public_key_mismatch")
        _check_chain(subject, *issuers)
        alias = call.arg("alias").strip().lower() or build_alias(subject)
        await self._write(call, "pfx.save_pfx", target, key, subject, _chain_for_file(*issuers), password, alias,
                          Status.FILE_EXISTS)
        if pair is not None:
            self.keypairs.remove(kp_id, call.caller.origin)
        return {}

    async def save_temporary_pfx(self, call: Call) -> dict[str, Any]:
        target = await self._target(call)
        password = call.arg("password")
        _check_password(call, password)
        subject = subject_name(call.arg("subject_x500_name"))
        pair = self.keypairs.get(call.arg("id"), call.caller.origin)
        if pair is None:
            raise EimzoError(Status.KEYPAIR_NOT_FOUND, "keypair_not_found")
        certificate = await asyncio.to_thread(new_keys.self_signed_certificate, pair.private_key, subject)
        alias = call.arg("alias").strip().lower() or build_alias(certificate)
        await self._write(call, "pfx.save_temporary_pfx", target, pair.private_key, certificate, [], password,
                          alias, Status.TEMPORARY_FILE_EXISTS)
        return {}

    async def _target(self, call: Call) -> Path:
        """`<disk>/<path>/<name>.pfx` from the page's arguments, each checked as load_key checks them."""
        disk = _find_disk(await asyncio.to_thread(self.disks), call.arg("disk"))
        path = call.arg("path").strip()
        if path.upper() not in ("", DSKEYS):
            raise EimzoError(Status.PATH_INVALID, "path_invalid")
        name = _key_file_name(call.arg("name").strip())
        folder = disk.root / DSKEYS if path and disk.root.name.upper() != DSKEYS else disk.root
        return folder / f"{name}.pfx"

    async def _write(self, call: Call, operation: str, target: Path, key: new_keys.PrivateKey,
                     certificate: asn1_x509.Certificate, chain: list[asn1_x509.Certificate], password: str,
                     alias: str, exists_status: int) -> None:
        serial, owner = _owner(certificate)
        pfx = await asyncio.to_thread(serialize_pfx, key, certificate, chain, password, alias)
        try:
            await asyncio.to_thread(write_new_key_file, target, pfx)
        except KeyStoreError as exc:
            exists = exc.kind is KeyErrorKind.FILE_EXISTS
            self._journal(call, operation, f"failed:{exists_status if exists else 'write'}", serial, owner, b"")
            if exists:
                raise EimzoError(exists_status, "file_exists") from None
            raise eimzo_error(exc, name=target.stem) from None
        self._journal(call, operation, "saved", serial, owner, b"")

    def _journal(self, call: Call, operation: str, result: str, serial: str, owner: str, content: bytes) -> None:
        if self.journal is not None:
            self.journal.append(JournalEntry(
                time=now_utc(), site=call.caller.label, operation=operation, certificate_serial=serial,
                owner=owner, content_sha256=hashlib.sha256(content).hexdigest() if content else "", result=result,
            ))


def _check_password(call: Call, password: str) -> None:
    """E-IMZO's new-password rules, whoever chose the password (a dialog, an askpass program, the page)."""
    broken = password_rules.unmet(password)
    if broken:
        rules = "; ".join(i18n.text(call.language, "prompt", rule) for rule in broken)
        raise EimzoError(Status.OTHER, "new_password_weak", rules=rules)
