"""Per-request CPU budget of every learner page, measured in-process (`make bench` prints and records it).

    python -m tests.pgcluster -- python -m bench.cpu     # after bench.generate filled the database

Each page is requested REQUESTS times through Flask's test client inside this process, in BATCHES batches;
the figure is the CPU time this process spent per request (time.process_time: what the app itself costs,
whatever else the shared machine is doing; the PostgreSQL server's share is left out). A bare Flask endpoint
is measured the same way, so the test client's own cost is visible. Every page runs twice in the same run:
with the content cache off (what every request cost before it existed) and on (warm: the first request of a
content version fills it). The budget is BUDGET_MS per request with the cache on; pages above it are marked.
This is a benchmark, not a test: nothing fails, the numbers are read. ``BENCH_CPU_PAGES``: measure only the
pages whose name contains one of these comma-separated words (``BENCH_CPU_PAGES=quiz``: the three quiz pages).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from pathlib import Path

from flask import Flask

from bench.generate import BENCH_PASSWORD, database_url

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MS = 3.0
REQUESTS = int(os.environ.get("BENCH_CPU_REQUESTS", "300"))
ONLY = [word for word in os.environ.get("BENCH_CPU_PAGES", "").split(",") if word]
BATCHES = 5
COURSE = "/courses/ai-literacy-for-every-worker"
# (name, path, logged in)
PAGES = [
    ("catalog /courses", "/courses", False),
    ("catalog filtered by occupation", "/courses?occupation=47-2111.00", False),
    ("catalog searched (q=safety)", "/courses?q=safety", False),
    ("course page", COURSE, False),
    ("framework explorer", "/framework", False),
    ("skill page", "/skills/AIL-01", False),
    ("catalog /courses (logged in)", "/courses", True),
    ("course page (logged in, enrolled)", COURSE, True),
    ("lesson page", COURSE + "/what-ai-is/how-generative-ai-works", True),
    ("dashboard (8 enrollments)", "/dashboard", True),
    ("catalog filtered by occupation (logged in)", "/courses?occupation=47-2111.00", True),
    ("catalog searched (logged in, q=safety)", "/courses?q=safety", True),
    ("continue: redirect to the next step", COURSE + "/continue", True),
    ("verify page (logged in, another's certificate)", "/verify/{certificate}", True),
]


PATHS: dict[str, str] = {}  # each measured page's path (the quiz pages' are found when measured)


def make_app(cache: bool) -> Flask:
    from core import create_app

    return create_app(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "bench-" + "k" * 40,
            "SQLALCHEMY_DATABASE_URI": database_url(),
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": False,
            "ALLOW_ANY_HOST": True,
            "ALLOW_OUTBOX_MAIL": True,
            "RATELIMIT_LOGIN": "1000 per minute",
            "CONTENT_CACHE": cache,
            "RATELIMIT_VERIFY": "1000000 per minute",  # one client checks hundreds of times here
        }
    )


def login(app: Flask, email: str = "learner1@bench.example"):
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": BENCH_PASSWORD})
    assert response.status_code in (302, 303), f"login failed: {response.status_code}"
    return client


def quiz_pages(app: Flask, client) -> list[tuple[str, str, bool]]:
    """The quiz pages of `make load`'s mix, for the logged-in learner: a quiz page (their first module's quiz),
    an open attempt's page (the second module's: started here, or the one already open) and a submitted
    attempt's result page (the third module's: an attempt started and submitted here, its first choices chosen;
    when a new one may not start, the latest attempt listed)."""
    from courses.services import outline

    with app.app_context():
        course = outline(COURSE.rsplit("/", 1)[1])
        quizzes = [f"{COURSE}/{module.slug}/quiz" for module in course.modules if module.quiz is not None]
    quiz, open_at, result_at = quizzes[0], quizzes[1], quizzes[2]

    def started(path: str) -> str | None:
        html = client.get(path).get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
        response = client.post(path + "/start", data={"csrf_token": token.group(1)}) if token else None
        if response is not None and response.status_code == 303:
            return response.headers["Location"]
        links = re.findall(r'href="([^"]+/quiz/attempts/\d+)"', html)
        return links[-1] if links else None

    attempt = started(open_at)
    submitted = started(result_at)
    html = client.get(submitted).get_data(as_text=True)
    if 'class="quiz-form"' in html:  # open: answer it (the first choice of each question)
        fields = dict.fromkeys(re.findall(r'name="(q-\d+)"', html))
        data = {"csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)}
        for name in fields:
            data[name] = re.search(rf'name="{name}" value="([^"]+)"', html).group(1)
        assert client.post(submitted, data=data).status_code == 303, "the quiz submission failed"
    return [
        ("quiz page", quiz, True),
        ("quiz attempt page (open)", attempt, True),
        ("quiz result page", submitted, True),
    ]


def chosen(name: str) -> bool:
    return not ONLY or any(word in name for word in ONLY)


def cpu_per_request(client, path: str) -> list[float]:
    """CPU milliseconds per request of each batch (after a few warm-up requests)."""
    for _ in range(5):
        response = client.get(path)
        assert response.status_code in (200, 302), f"{path} answered {response.status_code}"
    per_batch = REQUESTS // BATCHES
    batches = []
    for _ in range(BATCHES):
        start = time.process_time()
        for _ in range(per_batch):
            client.get(path)
        batches.append((time.process_time() - start) * 1000 / per_batch)
    return batches


def certificate_of_another(app: Flask, email: str = "learner1@bench.example") -> str:
    """The verify address's ID: a course certificate someone other than the signed-in learner holds."""
    from sqlalchemy import select

    from accounts.models import User
    from core.extensions import db
    from credentials.ids import format_public_id
    from credentials.models import Certificate

    query = (
        select(Certificate.public_id)
        .join(User, User.id == Certificate.user_id)
        .where(User.email != email, Certificate.program_id.is_(None))
        .order_by(Certificate.id)
        .limit(1)
    )
    with app.app_context():
        found = db.session.scalar(query)
        if found is None:  # bench.generate completes enrollments without issuing: issue one as bench.load does
            from sqlalchemy import text

            from bench.load import CERTIFICATES_FOR_GENERATED

            db.session.execute(
                text(CERTIFICATES_FOR_GENERATED + " AND u.email <> :email ORDER BY e.id LIMIT 1"), {"email": email}
            )
            db.session.commit()
            found = db.session.scalar(query)
        db.session.remove()
    return format_public_id(found)


def bare_figure() -> list[float]:
    from bench.bare import app as bare

    return cpu_per_request(bare.test_client(), "/")


def measure() -> tuple[list[float], dict[str, tuple[list[float], list[float]]]]:
    """(bare endpoint batches, {page name: (batches with the cache off, batches with it on)})."""
    results: dict[str, list[list[float]]] = {}
    for cache in (False, True):
        app = make_app(cache)
        visitor, learner = app.test_client(), login(app)
        certificate = certificate_of_another(app)
        pages = [(name, path.format(certificate=certificate), logged_in) for name, path, logged_in in PAGES]
        for name, path, logged_in in pages:
            if not chosen(name):
                continue
            PATHS[name] = path
            results.setdefault(name, []).append(cpu_per_request(learner if logged_in else visitor, path))
        # after the others: starting and submitting attempts changes the learner's progress
        for name, path, _ in quiz_pages(app, learner):
            if not chosen(name):
                continue
            PATHS[name] = path
            results.setdefault(name, []).append(cpu_per_request(learner, path))
        with app.app_context():
            from core.extensions import db

            db.engine.dispose()
    return bare_figure(), {name: (off, on) for name, (off, on) in results.items()}


def cell(batches: list[float]) -> str:
    return f"{statistics.median(batches):.2f} ({min(batches):.2f}–{max(batches):.2f})"


def section() -> str:
    bare, pages = measure()
    lines = [
        "## CPU per request (in-process budget)",
        "",
        f"Each page requested {REQUESTS} times through Flask's test client in one process ({BATCHES} batches; "
        "median batch with the lowest and highest in brackets), CPU time of that process per request "
        "(`time.process_time`; PostgreSQL's own share is not included). Budget: "
        f"{BUDGET_MS:.0f} ms per request with the content cache on. Rerun: `make bench` (or, on a generated "
        "database, `python -m tests.pgcluster -- sh -c 'python -m bench.generate && python -m bench.cpu'`).",
        "",
        "| page | path | CPU ms, cache off | CPU ms, cache on | saved | within 3 ms |",
        "|---|---|---:|---:|---:|:---:|",
        f"| bare Flask endpoint (test client included) | / | {cell(bare)} | {cell(bare)} | – | yes |",
    ]
    for name, (off, on) in pages.items():
        path = PATHS[name]
        saved = 1 - statistics.median(on) / statistics.median(off)
        ok = "yes" if statistics.median(on) <= BUDGET_MS else "**no**"
        lines.append(f"| {name} | `{path}` | {cell(off)} | {cell(on)} | {saved:.0%} | {ok} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    text = section()
    results = ROOT / "bench" / "RESULTS.md"
    with results.open("a") as out:
        out.write("\n" + text)
    print(text)


if __name__ == "__main__":
    if os.environ.get("BENCH_CPU_PRINT_ONLY"):
        print(section())
    else:
        main()
