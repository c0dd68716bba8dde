"""Catalog tooling: extract, update, compile and check the translation catalogs in ``translations/``.

One place for pybabel's options, used by the Makefile (``python -m core.catalogs extract|update|compile|init
CODE``), by ``tests/conftest.py`` (compiles stale catalogs before a test run) and by the catalog test (which
extracts to a temporary file and compares). Catalogs carry no source locations and are sorted by message, so
two people adding strings in different files rarely touch the same lines of a ``.po`` file.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import os
import sys
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from core.i18n import TRANSLATIONS_DIR, catalog_languages

ROOT = TRANSLATIONS_DIR.parent
POT = TRANSLATIONS_DIR / "messages.pot"
KEYWORDS = ["_l", "lazy_gettext", "lazy_ngettext:1,2", "lazy_pgettext:1c,2"]
# folders that hold no product strings (dot-folders such as .venv are skipped by pybabel's default too)
IGNORE_DIRS = [".*", "._", "tests", "bench", "migrations", "instance", "test-artifacts", "node_modules", "docs"]


def _pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])


# the kinds of file babel.cfg maps (and babel.cfg itself): a change to any other file changes no extraction
SOURCE_SUFFIXES = (".py", ".html", ".txt", ".cfg")
# (sources, options) -> the template the last extraction in this process wrote: problems() and init() extract
# afresh on every call, and an extraction reads and tokenizes every source file (~1.3 s of CPU)
_last_extraction: tuple[tuple, bytes] | None = None
# the last extraction of any process on this clone, after a line with the digest of its (sources, options): the
# catalog test and the pseudo-locale tests run in different processes of `make test` (each database's parts)
SHARED_EXTRACTION = TRANSLATIONS_DIR / ".last-extraction.pot"


def sources(root: Path = ROOT) -> tuple[tuple[str, int, int], ...]:
    """(path, size, modification time in ns) of every file under ``root`` an extraction may read: each file of a
    kind babel.cfg maps, in every folder pybabel enters (those IGNORE_DIRS names are left out, as pybabel does).
    A superset of what it reads: an extraction of the same sources gives the same strings."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not any(fnmatch.fnmatch(d, pattern) for pattern in IGNORE_DIRS))
        for name in sorted(files):
            if name.endswith(SOURCE_SUFFIXES):
                path = os.path.join(folder, name)
                stat = os.stat(path)
                found.append((path, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def extract(pot: Path = POT) -> Path:
    """Write every marked string of the code and templates to ``pot``.

    When no source file changed since this process, or another on this clone, last extracted, the same template
    is written again (its POT-Creation-Date that of the first extraction) instead of reading every file once
    more."""
    global _last_extraction
    key = extraction_key()
    if _last_extraction is None or _last_extraction[0] != key:
        _last_extraction = (key, _shared_extraction(key))
    pot.write_bytes(_last_extraction[1])
    return pot


def extraction_key() -> tuple:
    """Everything an extraction's output depends on: the sources, the options and the extractor's versions."""
    return (sources(), tuple(extract_options()), extractor_versions())


def extractor_versions() -> tuple[str, ...]:
    """What else decides the extraction's output besides the sources and options: a kept template is not reused
    across an upgrade of Python, Babel or Jinja (its extractor)."""
    from importlib.metadata import version

    return (sys.version, version("babel"), version("jinja2"))


def extract_options() -> list[str]:
    options = ["-F", str(ROOT / "babel.cfg"), "--no-location", "--sort-output"]
    options += [f"--ignore-dirs={' '.join(IGNORE_DIRS)}", "--project=AI Workforce Academy", "--no-wrap"]
    for keyword in KEYWORDS:
        options += ["-k", keyword]
    return options


def shared_header(key: tuple) -> bytes:
    """The line SHARED_EXTRACTION starts with: the digest of the (sources, options) it was extracted from."""
    return b"# sources " + hashlib.sha256(repr(key).encode()).hexdigest().encode() + b"\n"


def kept_extraction(header: bytes) -> bytes | None:
    """The template in SHARED_EXTRACTION when it starts with ``header`` (the same sources and options), else None."""
    try:
        kept = SHARED_EXTRACTION.read_bytes()
    except OSError:
        return None
    return kept[len(header) :] if kept.startswith(header) else None


def _shared_extraction(key: tuple) -> bytes:
    """The template of ``key``: the kept one when a process on this clone extracted the same sources with the same
    options, else extracted and kept. Processes that ask at once wait for the first (a lock file), so side by side
    they extract once."""
    header = shared_header(key)
    try:
        lock = open(SHARED_EXTRACTION.with_suffix(".lock"), "a")  # noqa: SIM115 (closed below)
    except OSError:  # a checkout this process cannot write to: extract, keep nothing
        with tempfile.TemporaryDirectory() as folder:
            _pybabel("extract", "-o", f"{folder}/messages.pot", *key[1], str(ROOT))
            return Path(f"{folder}/messages.pot").read_bytes()
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kept = kept_extraction(header)
        if kept is not None:
            return kept
        # named so that .gitignore covers one a killed process leaves behind
        fd, tmp = tempfile.mkstemp(dir=SHARED_EXTRACTION.parent, prefix=".last-extraction.", suffix=".tmp")
        os.close(fd)
        try:
            _pybabel("extract", "-o", tmp, *key[1], str(ROOT))
            template = Path(tmp).read_bytes()
            Path(tmp).write_bytes(header + template)
            os.replace(tmp, SHARED_EXTRACTION)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return template


def update() -> list[Path]:
    """Extract, then merge the new template into every catalog: new and changed strings arrive untranslated,
    removed ones are dropped. The header's dates are left alone, so two people updating
    at once do not both rewrite the same line. Returns the catalogs written."""
    with extract().open("rb") as handle:
        template = read_po(handle)
    written = []
    for code in catalog_languages():
        po = TRANSLATIONS_DIR / code / "LC_MESSAGES" / "messages.po"
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=code)
        # no fuzzy matching: difflib's guesses pair unrelated short strings ("Admin" with "Main")
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        _write_po(po, catalog)
        written.append(po)
    return written


def _write_po(po: Path, catalog) -> None:
    fd, tmp = tempfile.mkstemp(dir=po.parent, suffix=".po.tmp")
    with os.fdopen(fd, "wb") as out:
        write_po(out, catalog, width=0, no_location=True, sort_output=True, ignore_obsolete=True)
    os.replace(tmp, po)


def init(code: str, directory: Path = TRANSLATIONS_DIR) -> Path:
    """Start the catalog of a new language ``code`` (every string untranslated) from a fresh extraction;
    returns its path. The language is offered as soon as the catalog is compiled."""
    with tempfile.TemporaryDirectory() as tmp, extract(Path(tmp) / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    catalog = Catalog(locale=code, project="AI Workforce Academy", fuzzy=False)
    catalog.update(template, update_creation_date=False)
    po = directory / code / "LC_MESSAGES" / "messages.po"
    if po.exists():
        raise SystemExit(f"{po} exists already: use update")
    po.parent.mkdir(parents=True)
    _write_po(po, catalog)
    return po


def compile_catalogs(directory: Path = TRANSLATIONS_DIR, *, only_stale: bool = False) -> list[Path]:
    """Compile each ``messages.po`` under ``directory`` to ``messages.mo`` (fuzzy entries left out, as
    pybabel does). Written to a temporary file and renamed, so test runs side by side never read half a file.
    Returns the files written."""
    written = []
    for code in catalog_languages(directory):
        po = directory / code / "LC_MESSAGES" / "messages.po"
        mo = po.with_suffix(".mo")
        if only_stale and mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=code)
        fd, tmp = tempfile.mkstemp(dir=mo.parent, suffix=".mo.tmp")
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog, use_fuzzy=False)
        os.replace(tmp, mo)
        written.append(mo)
    return written


def problems(code: str, directory: Path = TRANSLATIONS_DIR) -> list[str]:
    """What keeps the ``code`` catalog from being complete: strings the code uses that it lacks, untranslated
    or fuzzy entries, and translations whose placeholders differ from the original's."""
    po = directory / code / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=code)
    found = []
    with tempfile.TemporaryDirectory() as tmp, extract(Path(tmp) / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    for message in template:
        if message.id and message.id not in catalog:
            found.append(f"missing from {code}: {message.id!r}")
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if message.fuzzy:
            found.append(f"fuzzy in {code}: {message.id!r}")
        elif not all(strings):
            found.append(f"untranslated in {code}: {message.id!r}")
    for message, errors in catalog.check():
        found.extend(f"{code}: {message.id!r}: {error}" for error in errors)
    return found


def main(argv: list[str]) -> int:
    command, *rest = argv or ["help"]
    if command == "extract":
        print(extract())
    elif command == "update":
        for path in update():
            print(path.relative_to(ROOT))
    elif command == "compile":
        for path in compile_catalogs():
            print(path.relative_to(ROOT))
    elif command == "init" and rest:
        print(init(rest[0]).relative_to(ROOT))
    elif command == "check":
        found = [problem for code in catalog_languages() for problem in problems(code)]
        print("\n".join(found) or "every catalog is complete")
        return 1 if found else 0
    else:
        print("usage: python -m core.catalogs extract | update | compile | check | init CODE", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
