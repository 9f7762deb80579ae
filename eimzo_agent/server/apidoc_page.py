"""`/apidoc.html`: the function table of the running agent as a page a portal developer can read.

E-IMZO's page renders its `apidoc` reply with a script; ours is generated on the server from the live registry,
so it lists exactly what this agent answers (our extensions and functions E-IMZO's apidoc hides included) and
needs no script. Every text from the table is escaped: plugin files are ours, but nothing here trusts them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from html import escape

from eimzo_agent import __version__, i18n
from eimzo_agent.protocol.calls import PluginFunction
from eimzo_agent.protocol.registry import Registry

#: A catalogue text of the page's language, already escaped.
Text = Callable[..., str]


def render(registry: Registry, lang: str) -> str:
    def t(key: str, **params: str) -> str:
        return escape(i18n.text(lang, "page", key, **params))

    parts = [
        f'<!DOCTYPE html>\n<html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f"<title>{t('apidoc_title', version=__version__)}</title></head>\n<body>\n"
        f"<h1>{t('apidoc_title', version=__version__)}</h1>\n<p>{t('apidoc_intro')}</p>\n"
    ]
    for plugin in registry.plugins():
        functions = [f for f in registry if f.plugin == plugin]
        shown = escape(plugin) or t("apidoc_main", functions=", ".join(f.name for f in functions))
        parts.append(f'<h2 id="{escape(plugin or "main")}">{shown}')
        # Plugins without a catalogue text (main, hidden ones) show their name only.
        with suppress(KeyError):
            parts.append(f" — {escape(i18n.text(lang, 'plugins', plugin))}")
        parts.append("</h2>\n<dl>\n")
        parts.extend(_function(f, t) for f in functions)
        parts.append("</dl>\n")
    parts.append("</body></html>\n")
    return "".join(parts)


def _function(function: PluginFunction, t: Text) -> str:
    names = ", ".join(escape(a.name) for a in function.arguments) + (", …" if function.variadic else "")
    notes = [t("apidoc_extension")] if function.extension else []
    if not function.description:
        notes.append(t("apidoc_hidden"))
    head = f"<dt><code>{escape(function.full_name)}({names})</code>"
    head += f" <small>({'; '.join(notes)})</small></dt>\n" if notes else "</dt>\n"
    body = f"<dd><p>{escape(function.description)}</p>\n" if function.description else "<dd>\n"
    if function.arguments:
        rows = "".join(
            f"<li><code>{escape(a.name)}</code>"
            + (f" <em>({t('apidoc_optional')})</em>" if a.optional else "")
            + (f" — {escape(a.description)}" if a.description else "")
            + "</li>\n"
            for a in function.arguments
        )
        body += f"{t('apidoc_arguments')}:<ul>\n{rows}</ul>\n"
    elif function.variadic:
        body += f"<p>{t('apidoc_arguments')}: {t('apidoc_more')}</p>\n"
    else:
        body += f"<p>{t('apidoc_arguments')}: {t('apidoc_no_arguments')}</p>\n"
    return head + body + "</dd>\n"
