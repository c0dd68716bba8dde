"""Every page of the learner, employer and verify journeys rendered in a pseudo-locale: each translated string
comes back as ⟦string⟧, so any visible text left without markers is a string someone forgot to mark.

The pseudo catalog is generated here from a fresh extraction (Esperanto's code, "eo", which Babel knows and we
do not ship), in a scratch translations folder beside a copy of the real ones. What is not interface text is
left out of the check: elements whose ``lang`` differs from the page's (content in another language, e.g. an
English course title), ``translate="no"`` / ``data-user-content`` regions (lesson bodies), ``<time>``
(dates formatted by Babel), ``<code>``, and the data this test created (names, titles, IDs: ``known_content``).

To add pages (e.g. organization, insights and studio pages): append ``Page(who, path)`` to ``JOURNEYS``;
``path`` may use the ``World`` attributes (``{course}``, ``{org}``, ``{certificate}``, …), and ``who`` is one of
``anonymous``, ``learner``, ``employer``, ``admin``. Extend ``world`` when a page needs more data.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po
from sqlalchemy import select

from core import create_app
from core.catalogs import compile_catalogs, extract
from core.extensions import db
from core.i18n import LANG_COOKIE, TRANSLATIONS_DIR
from tests import conftest
from tests.factories import (
    enroll,
    load_test_framework,
    make_certificate,
    make_course,
    make_employer,
    make_user,
    sign_in,
)

PSEUDO = "eo"
OPEN, CLOSE = "⟦", "⟧"


@dataclass(frozen=True)
class Page:
    who: str  # anonymous | learner | employer | admin
    path: str  # formatted with the World's attributes
    status: int = 200


JOURNEYS: dict[str, list[Page]] = {
    "learner": [
        Page("anonymous", "/"),
        Page("anonymous", "/register"),
        Page("anonymous", "/login"),
        Page("anonymous", "/forgot-password"),
        Page("anonymous", "/courses"),
        Page("anonymous", "/courses?q=zzzz-nothing"),
        Page("anonymous", "/courses/{course}"),
        Page("anonymous", "/programs"),
        Page("anonymous", "/framework"),
        Page("anonymous", "/skills/AIL-01"),
        Page("anonymous", "/occupations/43-4051.00"),
        Page("anonymous", "/help"),
        Page("anonymous", "/no-such-page", 404),
        Page("learner", "/"),
        Page("learner", "/courses/{course}"),
        Page("learner", "/courses/{course}/module-1/lesson-1-1"),
        Page("learner", "/courses/{course}/module-1/quiz"),
        Page("learner", "/dashboard"),
        Page("learner", "/account"),
        Page("learner", "/certificates"),
        Page("learner", "/certificates/{certificate}"),
        Page("learner", "/courses/{done_course}/done"),
        Page("learner", "/certificates/name-correction"),
        Page("learner", "/certificates/wallet/{wallet_offer}"),
        Page("anonymous", "/wallet/interactions/{wallet_offer}?iuv=1"),
    ],
    "verify": [
        Page("anonymous", "/verify"),
        Page("anonymous", "/verify/{certificate}"),
        Page("anonymous", "/verify/{unknown_certificate}", 404),
        Page("anonymous", "/verify/credential"),
        Page("anonymous", "/about/issuer"),
    ],
    "employer": [
        Page("employer", "/verify/{certificate}"),
        Page("employer", "/verify"),
    ],
    # organization pages (orgs/, insights/): add them here once their strings are marked, e.g.
    # "organization": [Page("employer", "/organizations"), ...],
}


@dataclass(frozen=True)
class World:
    course: str
    done_course: str
    certificate: str
    unknown_certificate: str
    learner_email: str
    employer_email: str
    wallet_offer: str = ""  # an open "Add to wallet" exchange of the learner's certificate


_PSEUDO_DIRS: list = []  # the folder pseudo_dir built in this process


@pytest.fixture(scope="module")
def pseudo_dir(tmp_path_factory):
    """translations/ copied, plus an "eo" catalog where every msgstr is ⟦msgid⟧, compiled.

    Built once per process: test_pseudo_locale_staff uses this fixture too, and extracting every marked string
    of the code is ~2 s of CPU; the files depend only on the repository, which a test run does not change."""
    if not _PSEUDO_DIRS:
        _PSEUDO_DIRS.append(_build_pseudo_dir(tmp_path_factory.mktemp("translations")))
    return _PSEUDO_DIRS[0]


def _build_pseudo_dir(folder):
    for code_dir in TRANSLATIONS_DIR.iterdir():
        if (code_dir / "LC_MESSAGES" / "messages.po").is_file():
            shutil.copytree(code_dir, folder / code_dir.name, ignore=shutil.ignore_patterns("*.mo"))
    with extract(folder / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    catalog = Catalog(locale=PSEUDO)
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            string = tuple(OPEN + form + CLOSE for form in message.id)
        else:
            string = OPEN + message.id + CLOSE
        catalog.add(message.id, string, flags=message.flags, context=message.context)
    (folder / PSEUDO / "LC_MESSAGES").mkdir(parents=True)
    with (folder / PSEUDO / "LC_MESSAGES" / "messages.po").open("wb") as out:
        write_po(out, catalog)
    compile_catalogs(folder)
    return folder


@pytest.fixture(scope="module")
def pseudo_app(pseudo_dir, tmp_path_factory, database_url):
    app = create_app(
        {**conftest.test_config(tmp_path_factory, database_url), "BABEL_TRANSLATION_DIRECTORIES": str(pseudo_dir)}
    )
    app.test_client_class = conftest.Client
    yield app
    with app.app_context():
        db.engine.dispose()  # its pooled connections, left to the garbage collector, warn in some later test


@pytest.fixture
def world(ctx) -> World:
    load_test_framework()
    learner = make_user(email="lee@example.org", name="Lee Learner")
    course = make_course("ai-basics", title="AI Basics")
    enroll(learner, course)
    certificate = make_certificate(learner, make_course("power-basics", title="Power Basics"))
    make_employer("hr@example.org", name="Hana Recruiter", org_name="Acme Staffing")
    from core.database import utcnow
    from credentials.ids import format_public_id
    from credentials.wallet import open_exchange

    offer = open_exchange(learner, certificate, now=utcnow())
    db.session.commit()
    return World(
        course="ai-basics",
        done_course="power-basics",
        certificate=format_public_id(certificate.public_id),
        unknown_certificate="AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG",
        learner_email="lee@example.org",
        employer_email="hr@example.org",
        wallet_offer=offer.public_id,
    )


def known_content() -> list[str]:
    """Everything the pages may show that people (or the framework file) wrote, longest first."""
    from accounts.models import User
    from courses.models import Choice, Course, Lesson, Module, Question, Quiz
    from credentials.models import Certificate
    from orgs.models import Organization
    from skills.models import Occupation, PlanGoal, Skill

    texts = set()
    for model, fields in [
        (User, ("name", "legal_name", "email")),
        (Course, ("title", "summary", "audience")),
        (Module, ("title", "summary")),
        (Lesson, ("title",)),
        (Quiz, ("title",)),
        (Question, ("prompt", "explanation")),
        (Choice, ("text",)),
        (Certificate, ("holder_name", "course_title", "issuer_name")),
        (Organization, ("name",)),
        (Skill, ("name", "category", "level", "description")),
        (PlanGoal, ("title", "section", "summary")),
        (Occupation, ("title",)),
    ]:
        for row in db.session.scalars(select(model)):
            texts.update(str(getattr(row, f)) for f in fields if getattr(row, f, None))
    # the issuer's name, a proper noun, and the pseudo-locale's own name in the account page's language list
    texts.update(("AI Workforce Academy", "O*NET-SOC", "Esperanto"))
    return sorted(texts, key=len, reverse=True)


SKIP_TAGS = {"script", "style", "time", "code"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
CHECKED_ATTRS = ("aria-label", "placeholder", "title", "alt")


class Collector(HTMLParser):
    """The page's visible text as one string (skipped regions become a space) and its labelled attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page_lang = ""
        self.stack: list[tuple[str, bool]] = []  # (tag, skipped)
        self.text: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def _skipped(self) -> bool:
        return any(skipped for _, skipped in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.page_lang = attrs.get("lang", "")
            return
        skipped = (
            tag in SKIP_TAGS
            or "data-user-content" in attrs
            or attrs.get("translate") == "no"
            or (attrs.get("lang") not in (None, self.page_lang))
        )
        outer = self._skipped()
        if not (outer or skipped):
            for name in CHECKED_ATTRS:
                if attrs.get(name):
                    self.attrs.append((tag, name, attrs[name]))
            if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
                self.attrs.append((tag, "value", attrs["value"]))
            if tag == "meta" and attrs.get("name") == "description":
                self.attrs.append((tag, "content", attrs.get("content", "")))
        if tag in VOID:
            return
        if skipped and not outer:
            self.text.append(" ")
        self.stack.append((tag, skipped))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if not self._skipped():
            self.text.append(data)


WORD = re.compile(r"\S+")
MARKED = re.compile(re.escape(OPEN) + "[^" + OPEN + CLOSE + "]*" + re.escape(CLOSE))


def unmarked(text: str, known: list[str]) -> list[str]:
    """Words of ``text`` outside ⟦…⟧, after removing known content; codes (with a digit), URLs and email
    addresses are not words."""
    for item in known:
        text = text.replace(item, " ")
    previous = None
    while previous != text:
        previous, text = text, MARKED.sub(" ", text)
    words = []
    for word in WORD.findall(text):
        if any(ch.isdigit() for ch in word) or "://" in word or "@" in word or word.startswith("/"):
            continue
        if any(ch.isalpha() for ch in word):
            words.append(word)
    return words


def problems_on(html: str, known: list[str]) -> list[str]:
    parser = Collector()
    parser.feed(html)
    found = []
    if parser.page_lang != PSEUDO:
        found.append(f'<html lang="{parser.page_lang}">')
    text = "".join(parser.text)
    for word in unmarked(text, known):
        at = text.find(word)
        found.append(f"text {word!r} in …{' '.join(text[max(0, at - 60) : at + 60].split())}…")
    for tag, name, value in parser.attrs:
        if unmarked(value, known):
            found.append(f"<{tag} {name}={value!r}>")
    return found


def test_every_journey_page_is_fully_translated(pseudo_app, world, ctx):
    clients = {}
    for who, email in (("learner", world.learner_email), ("employer", world.employer_email)):
        client = pseudo_app.test_client()
        client.set_cookie(LANG_COOKIE, PSEUDO)
        sign_in(client, email)
        clients[who] = client
    anonymous = pseudo_app.test_client()
    anonymous.set_cookie(LANG_COOKIE, PSEUDO)
    clients["anonymous"] = anonymous
    known = known_content()
    report = {}
    checked = 0
    for journey, pages in JOURNEYS.items():
        for page in pages:
            path = page.path.format(**vars(world))
            response = clients[page.who].get(path)
            assert response.status_code == page.status, (journey, path, response.status_code)
            found = problems_on(response.get_data(as_text=True), known)
            if found:
                report[f"{journey} {page.who} {path}"] = found
            checked += 1
    assert checked == sum(len(pages) for pages in JOURNEYS.values())
    assert report == {}, "\n".join(f"{where}:\n  " + "\n  ".join(found) for where, found in report.items())


def test_the_check_catches_an_unmarked_string():
    """The detector itself: marked text, content and codes pass; a bare English word does not."""
    known = ["Lee Learner"]
    good = f'<html lang="{PSEUDO}"><body><p>{OPEN}Hello {OPEN}Lee Learner{CLOSE}{CLOSE} 7K3Q-9XWM</p></body></html>'
    assert problems_on(good, known) == []
    bad = f'<html lang="{PSEUDO}"><body><p>{OPEN}Hello{CLOSE} Forgotten words</p><p lang="en">Content</p></body></html>'
    assert [p.split(" in ")[0] for p in problems_on(bad, known)] == ["text 'Forgotten'", "text 'words'"]
    attribute = f'<html lang="{PSEUDO}"><body><nav aria-label="Main"></nav></body></html>'
    assert problems_on(attribute, known) == ["<nav aria-label='Main'>"]


@pytest.mark.nodb
def test_an_extraction_is_shared_with_the_other_processes_of_the_clone(tmp_path, monkeypatch):
    """The catalog test and these pages run in different processes of `make test`: the first extraction of the
    sources is kept beside the catalogs and read back by the others while no source changed; a kept extraction
    of other sources (or options) is never served."""
    from core import catalogs

    first = catalogs.extract(tmp_path / "first.pot").read_bytes()  # this process's, kept or extracted
    assert b'msgid "Log in"' in first
    header = catalogs.shared_header(catalogs.extraction_key())
    assert catalogs.SHARED_EXTRACTION.read_bytes() == header + first
    extractions = []
    real = catalogs._pybabel
    monkeypatch.setattr(catalogs, "_pybabel", lambda *args: extractions.append(args) or real(*args))
    monkeypatch.setattr(catalogs, "_last_extraction", None)  # another process, that has not extracted yet
    assert catalogs.extract(tmp_path / "again.pot").read_bytes() == first and extractions == []

    monkeypatch.setattr(catalogs, "SHARED_EXTRACTION", tmp_path / ".last-extraction.pot")
    assert catalogs.kept_extraction(header) is None  # none kept yet
    catalogs.SHARED_EXTRACTION.write_bytes(b"# sources " + b"0" * 64 + b'\nmsgid "Other sources"\n')
    assert catalogs.kept_extraction(header) is None
    catalogs.SHARED_EXTRACTION.write_bytes(header + b'msgid "Kept"\n')
    assert catalogs.kept_extraction(header) == b'msgid "Kept"\n'
