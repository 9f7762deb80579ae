"""The pfx plugin: key files on disks — listing, loading (no password), password checks and changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eimzo_agent import i18n
from eimzo_agent.keys import password_rules
from eimzo_agent.keys.disks import Disk
from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.key_file_writer import change_key_file_password
from eimzo_agent.keys.pfx_files import (
    PfxFileEntry,
    list_all_certificates,
    list_certificates,
    read_key_file,
    resolve_key_file,
)
from eimzo_agent.keys.pkcs12 import list_aliases
from eimzo_agent.keys.sessions import KeySessions, LoadedKey
from eimzo_agent.plugins.keyuse import PFX_KEY_STORE, KeyUnlocker, eimzo_error, key_label, memory_key
from eimzo_agent.plugins.prompt_info import KeyFamily, key_family
from eimzo_agent.policy.asking import ask_person, refused
from eimzo_agent.protocol.calls import Argument, Call, PluginFunction
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.ui.prompt_queue import PromptRefused
from eimzo_agent.ui.prompter import ChangePrompter, Prompter, PromptRequest
from eimzo_agent.ui.remember import PasswordMemory

#: The disks as they are now (flash drives come and go, so this is looked up on every call).
DiskSource = Callable[[], list[Disk]]


def _entry(e: PfxFileEntry) -> dict[str, str]:
    return {"disk": e.disk, "path": e.path, "name": e.name, "alias": e.alias}


class PfxPlugin:
    """pfx.*: what key files exist, which one a page chose (a keyId), and its password."""

    def __init__(self, *, disks: DiskSource, sessions: KeySessions, unlocker: KeyUnlocker, prompter: Prompter,
                 passwords: PasswordMemory) -> None:
        self.disks = disks
        self.sessions = sessions
        self.unlocker = unlocker
        self.prompter = prompter
        self.passwords = passwords

    def functions(self) -> list[PluginFunction]:
        pfx_id = Argument("pfxId", "Идентификатор загруженного ключа")
        return [
            PluginFunction("pfx", name, handler, args, description)
            for name, handler, args, description in (
                ("list_disks", self.list_disks, (), "Получить список дисков"),
                ("list_certificates", self.list_certificates, (Argument("disk", "Диск"),),
                 "Получить список сертификатов в PFX-файлах на диске"),
                ("list_all_certificates", self.list_all_certificates, (),
                 "Получить список всех сертификатов в PFX-файлах"),
                ("load_key", self.load_key, (
                    Argument("disk", "Диск"),
                    Argument("path", "Папка: '' или 'DSKEYS'", optional=True),
                    Argument("name", "Имя PFX-файла без расширения"),
                    Argument("alias", "Алиас сертификата"),
                ), "Загрузить ключ и получить его идентификатор. Ключ будет доступен определенное время"),
                ("unload_key", self.unload_key, (pfx_id,), "Выгрузить ранее загруженный ключ"),
                ("verify_password", self.verify_password, (pfx_id,), "Проверить пароль ключа"),
                ("change_password", self.change_password, (pfx_id,), "Изменить пароль ключа"),
            )
        ]

    def _session(self, call: Call, argument: str) -> LoadedKey:
        key = self.sessions.get(call.arg(argument), call.caller.origin)
        if key is None or key.store_type != PFX_KEY_STORE:
            raise EimzoError(Status.KEY_ID_TYPE_NOT_FOUND, "key_id_type_not_found", type=PFX_KEY_STORE)
        return key

    async def list_disks(self, call: Call) -> dict[str, Any]:
        disks = await asyncio.to_thread(self.disks)
        return {"disks": [d.label for d in disks]}

    async def list_certificates(self, call: Call) -> dict[str, Any]:
        label = call.arg("disk")
        disks = await asyncio.to_thread(self.disks)
        disk = next((d for d in disks if label in (d.label, d.label.rstrip("/\\"))), None)
        if disk is None:
            raise EimzoError(Status.DISK_NOT_FOUND, "disk_not_found")
        entries = await asyncio.to_thread(list_certificates, disk)
        return {"certificates": [_entry(e) for e in entries]}

    async def list_all_certificates(self, call: Call) -> dict[str, Any]:
        entries = await asyncio.to_thread(lambda: list_all_certificates(self.disks()))
        return {"certificates": [_entry(e) for e in entries]}

    async def load_key(self, call: Call) -> dict[str, Any]:
        disk, path, name, alias = (call.arg(a) for a in ("disk", "path", "name", "alias"))
        try:
            disks = await asyncio.to_thread(self.disks)
            found_disk, file = await asyncio.to_thread(resolve_key_file, disks, disk, path, name)
            aliases, family = await asyncio.to_thread(_listing, file)
        except KeyStoreError as exc:
            raise eimzo_error(exc, alias=alias, name=name) from None
        wanted = alias.strip().lower()
        if wanted not in aliases and not (wanted == "" and len(aliases) == 1):
            raise EimzoError(Status.ALIAS_NOT_IN_PFX, "alias_not_in_pfx", alias=alias, name=name)
        key_id = self.sessions.add(
            LoadedKey(
                key_id="",
                origin=call.caller.origin or "",
                store_type=PFX_KEY_STORE,
                disk=found_disk.label,
                path="DSKEYS" if path else "",
                name=Path(file).stem,
                alias=wanted or aliases[0],
                file=Path(file),
                # What the file tells without the password: a page whose keys are all RSA/ECDSA ones gets no
                # O'zDSt hash of its large documents made ahead (server/prehash.py).
                ozdst={"ozdst": True, "other": False}.get(family or ""),
            )
        )
        return {"keyId": key_id, "type": PFX_KEY_STORE}

    async def unload_key(self, call: Call) -> dict[str, Any]:
        key = self.sessions.get(call.arg("pfxId"), call.caller.origin)
        if key is None or not self.sessions.remove(call.arg("pfxId"), call.caller.origin):
            raise EimzoError(Status.KEY_ID_TYPE_NOT_FOUND, "key_id_type_not_found", type=PFX_KEY_STORE)
        if call.caller.origin:  # the page is done with the key: let go of the decrypted copy (the password stays)
            self.passwords.drop_unlocked(call.caller.origin, memory_key(key))
        return {}

    async def verify_password(self, call: Call) -> dict[str, Any]:
        await self.unlocker.open(call, self._session(call, "pfxId"), "verify_password")
        return {}

    async def change_password(self, call: Call) -> dict[str, Any]:
        key = self._session(call, "pfxId")
        prompter = self.prompter
        if isinstance(prompter, ChangePrompter) and prompter.supports_change:
            current, new = await self._ask_change_in_one_dialog(call, key, prompter)
        else:  # askpass: three separate questions, as scripts written for it expect
            _, current = await self.unlocker.open(call, key, "change_password")
            new = await self._ask_new_password(call, key)
        # E-IMZO's rules hold whoever asked: the dialog shows them, an askpass program's answer is checked here.
        broken = password_rules.unmet(new)
        if broken:
            rules = "; ".join(i18n.text(call.language, "prompt", rule) for rule in broken)
            raise EimzoError(Status.OTHER, "new_password_weak", rules=rules)
        try:
            # One step of the keys layer: serialised per file, the file's scheme and names kept, the new bytes
            # proved to open with the new password before they replace the old ones (the user is never keyless).
            await asyncio.to_thread(change_key_file_password, key.file, key.alias, current, new)
        except KeyStoreError as exc:
            if exc.kind is KeyErrorKind.WRONG_PASSWORD:  # the file changed under us
                raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled") from None
            raise eimzo_error(exc, alias=key.alias, name=key.name) from None
        self.passwords.forget_key(memory_key(key))  # a remembered old password would only fail now
        return {}

    async def _ask_change_in_one_dialog(self, call: Call, key: LoadedKey,
                                        prompter: ChangePrompter) -> tuple[str, str]:
        """Current, new and repeated password in one dialog (which already shows E-IMZO's rules and the match).

        The current password is checked like any other: a wrong one re-opens the dialog, up to the tries limit.
        """
        chosen: list[str] = []

        async def ask(request: PromptRequest) -> str | None:
            try:
                change = await prompter.ask_change(request)
            except PromptRefused as exc:
                raise refused(exc) from None
            if change is None:
                return None
            chosen[:] = [change.new]
            return change.current

        _, current = await self.unlocker.open(call, key, "change_password", ask=ask, kind="change_password")
        if not chosen or not chosen[0]:
            raise EimzoError(Status.NEW_PASSWORDS_MISMATCH, "new_passwords_mismatch")
        return current, chosen[0]

    async def _ask_new_password(self, call: Call, key: LoadedKey) -> str:
        answers = []
        for kind in ("new_password", "repeat_new_password"):
            answer = await ask_person(self.prompter, PromptRequest(
                kind=kind,  # type: ignore[arg-type]
                site=call.caller.label,
                key_label=key_label(key.alias),
                operation="change_password",
                language=call.language,
                caller=call.caller,
            ))
            if answer is None:
                raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")
            answers.append(answer)
        if answers[0] != answers[1] or not answers[0]:
            raise EimzoError(Status.NEW_PASSWORDS_MISMATCH, "new_passwords_mismatch")
        return answers[0]


def _listing(file: Path) -> tuple[list[str], KeyFamily | None]:
    """The file's aliases and, as far as its unencrypted part tells, its kind of key (one read of the file)."""
    data = read_key_file(file)
    return list_aliases(data), key_family(data)
