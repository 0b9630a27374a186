"""Extract messages from bot/ and merge them into the catalogs, keeping translations.

    python -m bot.i18n.extract          # update bot/locales/bot.pot, ar and en bot.po
    python -m bot.i18n.extract --check  # exit 1 if that would change anything (CI)

English gets msgstr = msgid automatically; new Arabic entries are left empty (or fuzzy,
when they look like an edited old message) for a translator to fill in.
Files are only rewritten when messages change, not just their timestamps.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from bot.i18n.catalog import DOMAIN, SUPPORTED

# A developer's tool: it works on the checkout (bot/locales), not on an installed package.
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "bot"
LOCALES_DIR = ROOT / PACKAGE / "locales"
POT_PATH = LOCALES_DIR / f"{DOMAIN}.pot"


def po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


# `gettext` too, so tr.gettext("...") is caught like tr._("...").
KEYWORDS: dict[str, tuple[int, ...] | None] = {
    "_": None,
    "gettext": None,
    "N_": None,
    "ngettext": (1, 2),
}
COMMENT_TAGS = ("Translators:",)
# Babel's own table swaps Arabic "many" and "other" (python-babel/babel#816), so the
# header is always forced to the standard CLDR/gettext rule.
AR_PLURAL_FORMS = (
    "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : "
    "n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5);"
)
_HEADER = "# Messages of the insurance status bot.\n#"
_VOLATILE = (b'"POT-Creation-Date:', b'"PO-Revision-Date:')


def extract_template() -> Catalog:
    """All messages marked in the bot package, as a template catalog."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    template = Catalog(
        project="insurance-status-bot", domain=DOMAIN, fuzzy=False, header_comment=_HEADER
    )
    found = extract_from_dir(
        ROOT / PACKAGE,
        method_map,
        options_map,
        keywords=KEYWORDS,
        comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        location = (f"{PACKAGE}/{Path(filename).as_posix()}", lineno)
        template.add(message, None, [location], auto_comments=comments, context=context)
    return template


def merge(template: Catalog, locale: str, existing: Catalog | None) -> Catalog:
    catalog = existing or Catalog(locale=locale, domain=DOMAIN, fuzzy=False, header_comment=_HEADER)
    catalog.project = template.project
    catalog.fuzzy = False
    if locale == "ar":
        catalog.mime_headers = [("Plural-Forms", AR_PLURAL_FORMS)]
    # English has nothing to guess: no fuzzy matching, every entry is its own msgid.
    catalog.update(template, no_fuzzy_matching=locale == "en")
    catalog.obsolete.clear()
    for message in list(catalog)[1:]:
        if locale == "en":
            message.string = message.id
            message.flags.discard("fuzzy")
        elif message.pluralizable:
            string = message.string or ()
            forms = [string] if isinstance(string, str) else list(string)
            message.string = tuple(forms + [""] * (catalog.num_plurals - len(forms)))
        else:
            message.string = message.string or ""
    return catalog


def render(catalog: Catalog) -> bytes:
    buffer = BytesIO()
    write_po(buffer, catalog, width=100, include_lineno=False, ignore_obsolete=True)
    return buffer.getvalue()


def _stable(content: bytes) -> list[bytes]:
    return [line for line in content.splitlines() if not line.startswith(_VOLATILE)]


def _read(path: Path, locale: str) -> Catalog | None:
    if not path.exists():
        return None
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN, abort_invalid=True)


def planned_files() -> dict[Path, bytes]:
    template = extract_template()
    files = {POT_PATH: render(template)}
    for locale in SUPPORTED:
        path = po_path(locale)
        files[path] = render(merge(template, locale, _read(path, locale)))
    return files


def changed(files: dict[Path, bytes]) -> Iterable[Path]:
    for path, content in files.items():
        if not path.exists() or _stable(path.read_bytes()) != _stable(content):
            yield path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.i18n.extract",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the catalogs are out of date"
    )
    args = parser.parse_args(argv)
    files = planned_files()
    stale = list(changed(files))
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path.relative_to(ROOT)}")
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[path])
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
