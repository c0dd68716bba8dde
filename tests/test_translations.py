"""The catalogs: Spanish is complete (nothing missing, untranslated or fuzzy; placeholders intact), compiled
catalogs are what the app serves, and a third language needs a catalog and no code."""

from __future__ import annotations

import os
import re

import pytest
from babel.messages.pofile import read_po, write_po

from core import catalogs, create_app
from core.catalogs import compile_catalogs, init, problems
from core.i18n import TRANSLATIONS_DIR, catalog_languages
from tests import conftest


@pytest.mark.nodb
def test_every_catalog_is_complete():
    """Fails with the list to fix: `make translations-update`, fill the msgstr lines (README, Translations)."""
    assert catalog_languages() == ["es"]
    found = problems("es")
    assert found == [], "\n".join(found)


@pytest.mark.nodb
def test_a_missing_or_fuzzy_string_is_reported(tmp_path):
    folder = tmp_path / "es" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (TRANSLATIONS_DIR / "es" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="es")
    catalog.delete("Log in")
    catalog["Log out"].flags.add("fuzzy")
    catalog["Courses"].string = ""
    formatted = next(m for m in catalog if m.id and "python-format" in m.flags)
    formatted.string = "Traducción con %(otro_nombre)s"
    with (folder / "messages.po").open("wb") as out:
        write_po(out, catalog)
    found = problems("es", directory=tmp_path)
    assert "missing from es: 'Log in'" in found
    assert "fuzzy in es: 'Log out'" in found
    assert "untranslated in es: 'Courses'" in found
    assert any(repr(formatted.id) in problem and "placeholder" in problem for problem in found), found


def test_a_third_language_needs_only_its_catalog(tmp_path, tmp_path_factory, database_url):
    """The README's steps for a new language, in a scratch translations folder: init, translate, compile."""
    for code in ("es", "pt"):
        if code == "es":
            (tmp_path / "es" / "LC_MESSAGES").mkdir(parents=True)
            source = TRANSLATIONS_DIR / "es" / "LC_MESSAGES" / "messages.po"
            (tmp_path / "es" / "LC_MESSAGES" / "messages.po").write_bytes(source.read_bytes())
        else:
            po = init("pt", directory=tmp_path)
            with po.open("rb") as handle:
                catalog = read_po(handle, locale="pt")
            catalog["Courses"].string = "Cursos (pt)"
            with po.open("wb") as out:
                write_po(out, catalog)
    compile_catalogs(tmp_path)
    app = create_app(
        {**conftest.test_config(tmp_path_factory, database_url), "BABEL_TRANSLATION_DIRECTORIES": str(tmp_path)}
    )
    html = app.test_client().get("/", headers={"Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert '<html lang="pt">' in html
    assert ">Cursos (pt)</a>" in html
    assert ">Log in</a>" in html  # not translated yet: English, never an empty string
    assert re.search(r'lang="es" hreflang="es">Español</a>', html)
    assert '<link rel="alternate" hreflang="pt"' in html


@pytest.mark.nodb
def test_an_extraction_is_reused_only_while_no_source_changes(tmp_path):
    """extract() writes the last template again while catalogs.sources() is unchanged: that fingerprint changes
    with every file an extraction may read (added, grown, touched) and with no other."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "pkg" / "views.py").write_text("_l('Hello')\n")
    (tmp_path / "templates" / "page.html").write_text("{{ _('Hi') }}\n")
    before = catalogs.sources(tmp_path)
    assert [path for path, _, _ in before] == [
        str(tmp_path / "pkg" / "views.py"),
        str(tmp_path / "templates" / "page.html"),
    ]
    for folder in ("tests", ".venv", "node_modules", "docs"):  # folders pybabel never enters
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.py").write_text("_l('Ignored')\n")
    (tmp_path / "pkg" / "notes.md").write_text("not a source\n")
    assert catalogs.sources(tmp_path) == before
    (tmp_path / "pkg" / "views.py").write_text("_l('Hello')\n_l('Bye')\n")
    grown = catalogs.sources(tmp_path)
    assert grown != before
    stat = os.stat(tmp_path / "templates" / "page.html")
    os.utime(tmp_path / "templates" / "page.html", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))
    assert catalogs.sources(tmp_path) != grown
    (tmp_path / "templates" / "mail.txt").write_text("{{ _('New') }}\n")
    assert len(catalogs.sources(tmp_path)) == 3
    first = catalogs.extract(tmp_path / "first.pot").read_bytes()
    assert b'msgid "Log in"' in first
    assert catalogs.extract(tmp_path / "again.pot").read_bytes() == first
