"""The pages' languages: Chinese (the default) and English, from gettext catalogs.

The catalogs are the .po files under `translations/` (msgids are English);
they are compiled in memory the first time a language is used, so nothing
needs a build step. A user's choice is remembered in a cookie.
"""

from __future__ import annotations

import io
from functools import cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT = "zh"
COOKIE = "gasbill_lang"
DOMAIN = "messages"


def pick(requested: str | None) -> str:
    return requested if requested in LANGUAGES else DEFAULT


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of `language`; English needs none (msgids are English)."""
    folder = resources.files("gasbill.web") / "translations" / language / "LC_MESSAGES"
    po = folder / f"{DOMAIN}.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)
