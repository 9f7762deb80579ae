"""The pfx plugin: key files on disks — listing, loading (no password), password checks and changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eimzo_agent.keys.errors import KeyErrorKind, KeyStoreError
from eimzo_agent.keys.pfx_files import (
    PfxFileEntry,
    list_all_certificates,
    list_certificates,
    read_key_file,
    resolve_key_file,
)
from eimzo_agent.keys.key_file_writer import change_key_file_password
from eimzo_agent.keys.pkcs12 import list_aliases
from eimzo_agent.keys.sessions import LoadedKey
from eimzo_agent.plugins.keyuse import PFX_KEY_STORE, ask_and_open, eimzo_error, memory_key
from eimzo_agent.protocol.dispatcher import Call
from eimzo_agent.protocol.errors import EimzoError, Status
from eimzo_agent.protocol.registry import Argument, PluginFunction
from eimzo_agent.ui.prompter import PromptRequest

if TYPE_CHECKING:
    from eimzo_agent.agent import Agent


def _entry(e: PfxFileEntry) -> dict[str, str]:
    return {"disk": e.disk, "path": e.path, "name": e.name, "alias": e.alias}


def register(agent: Agent) -> None:
    def session(call: Call, argument: str) -> LoadedKey:
        key = agent.sessions.get(call.arg(argument), call.context.origin)
        if key is None or key.store_type != PFX_KEY_STORE:
            raise EimzoError(Status.KEY_ID_TYPE_NOT_FOUND, "key_id_type_not_found", type=PFX_KEY_STORE)
        return key

    async def list_disks(call: Call) -> dict[str, Any]:
        disks = await asyncio.to_thread(agent.disks)
        return {"disks": [d.label for d in disks]}

    async def list_certificates_(call: Call) -> dict[str, Any]:
        label = call.arg("disk")
        disks = await asyncio.to_thread(agent.disks)
        disk = next((d for d in disks if label in (d.label, d.label.rstrip("/\\"))), None)
        if disk is None:
            raise EimzoError(Status.DISK_NOT_FOUND, "disk_not_found")
        entries = await asyncio.to_thread(list_certificates, disk)
        return {"certificates": [_entry(e) for e in entries]}

    async def list_all_certificates_(call: Call) -> dict[str, Any]:
        entries = await asyncio.to_thread(lambda: list_all_certificates(agent.disks()))
        return {"certificates": [_entry(e) for e in entries]}

    async def load_key(call: Call) -> dict[str, Any]:
        disk, path, name, alias = (call.arg(a) for a in ("disk", "path", "name", "alias"))
        try:
            disks = await asyncio.to_thread(agent.disks)
            found_disk, file = await asyncio.to_thread(resolve_key_file, disks, disk, path, name)
            aliases = await asyncio.to_thread(lambda: list_aliases(read_key_file(file)))
        except KeyStoreError as exc:
            raise eimzo_error(exc, alias=alias, name=name) from None
        wanted = alias.strip().lower()
        if wanted not in aliases and not (wanted == "" and len(aliases) == 1):
            raise EimzoError(Status.ALIAS_NOT_IN_PFX, "alias_not_in_pfx", alias=alias, name=name)
        key_id = agent.sessions.add(
            LoadedKey(
                key_id="",
                origin=call.context.origin or "",
                store_type=PFX_KEY_STORE,
                disk=found_disk.label,
                path="DSKEYS" if path else "",
                name=Path(file).stem,
                alias=wanted or aliases[0],
                file=Path(file),
            )
        )
        return {"keyId": key_id, "type": PFX_KEY_STORE}

    async def unload_key(call: Call) -> dict[str, Any]:
        if not agent.sessions.remove(call.arg("pfxId"), call.context.origin):
            raise EimzoError(Status.KEY_ID_TYPE_NOT_FOUND, "key_id_type_not_found", type=PFX_KEY_STORE)
        return {}

    async def verify_password(call: Call) -> dict[str, Any]:
        await ask_and_open(agent, call, session(call, "pfxId"), "verify_password")
        return {}

    async def change_password(call: Call) -> dict[str, Any]:
        key = session(call, "pfxId")
        if getattr(agent.prompter, "supports_change", False):
            current, new = await _ask_change_in_one_dialog(agent, call, key)
        else:  # askpass: three separate questions, as scripts written for it expect
            _, current = await ask_and_open(agent, call, key, "change_password")
            new = await _ask_new_password(agent, call, key)
        try:
            # One step of the keys layer: serialised per file, the file's scheme and names kept, the new bytes
            # proved to open with the new password before they replace the old ones (the user is never keyless).
            await asyncio.to_thread(change_key_file_password, key.file, key.alias, current, new)
        except KeyStoreError as exc:
            if exc.kind is KeyErrorKind.WRONG_PASSWORD:  # the file changed under us
                raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled") from None
            raise eimzo_error(exc, alias=key.alias, name=key.name) from None
        agent.passwords.forget_key(memory_key(key))  # a remembered old password would only fail now
        return {}

    pfx_id = Argument("pfxId", "Идентификатор загруженного ключа")
    for name, handler, args, description in (
        ("list_disks", list_disks, (), "Получить список дисков"),
        ("list_certificates", list_certificates_, (Argument("disk", "Диск"),),
         "Получить список сертификатов в PFX-файлах на диске"),
        ("list_all_certificates", list_all_certificates_, (), "Получить список всех сертификатов в PFX-файлах"),
        ("load_key", load_key, (
            Argument("disk", "Диск"),
            Argument("path", "Папка: '' или 'DSKEYS'", optional=True),
            Argument("name", "Имя PFX-файла без расширения"),
            Argument("alias", "Алиас сертификата"),
        ), "Загрузить ключ и получить его идентификатор. Ключ будет доступен определенное время"),
        ("unload_key", unload_key, (pfx_id,), "Выгрузить ранее загруженный ключ"),
        ("verify_password", verify_password, (pfx_id,), "Проверить пароль ключа"),
        ("change_password", change_password, (pfx_id,), "Изменить пароль ключа"),
    ):
        agent.registry.add(PluginFunction("pfx", name, handler, args, description))


async def _ask_change_in_one_dialog(agent: Agent, call: Call, key: LoadedKey) -> tuple[str, str]:
    """Current, new and repeated password in one dialog (which already enforced E-IMZO's rules and the match).

    The current password is checked like any other: a wrong one re-opens the dialog, up to `password_tries`.
    """
    chosen: list[str] = []

    async def ask(request: PromptRequest) -> str | None:
        change = await agent.prompter.ask_change(request)  # type: ignore[attr-defined]
        if change is None:
            return None
        chosen[:] = [change.new]
        return change.current

    _, current = await ask_and_open(agent, call, key, "change_password", ask=ask, kind="change_password")
    if not chosen or not chosen[0]:
        raise EimzoError(Status.NEW_PASSWORDS_MISMATCH, "new_passwords_mismatch")
    return current, chosen[0]


async def _ask_new_password(agent: Agent, call: Call, key: LoadedKey) -> str:
    from eimzo_agent.plugins.keyuse import key_label

    answers = []
    for kind in ("new_password", "repeat_new_password"):
        answer = await agent.prompter.ask(
            PromptRequest(
                kind=kind,  # type: ignore[arg-type]
                site=call.context.origin or "",
                key_label=key_label(key.alias),
                operation="change_password",
                language=call.language,
            )
        )
        if answer is None:
            raise EimzoError(Status.PASSWORD_CANCELLED, "password_cancelled")
        answers.append(answer)
    if answers[0] != answers[1]:
        raise EimzoError(Status.NEW_PASSWORDS_MISMATCH, "new_passwords_mismatch")
    if not answers[0]:
        raise EimzoError(Status.NEW_PASSWORDS_MISMATCH, "new_passwords_mismatch")
    return answers[0]
