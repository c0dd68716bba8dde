"""Where `make load`'s mix spends the app's CPU: the same learner journeys, in-process, per endpoint.

    python -m tests.pgcluster -- python -m bench.mix           # builds its data set (bench.generate + load.prepare)
    BENCH_MIX_PROFILE=1 ...                                    # also a CPU-time cProfile of the whole run (top 40)
    BENCH_MIX_PROFILE_ONLY=complete ...                        # a cProfile of those endpoints' requests only
    BENCH_MIX_SQL=completes ...                                # the SQL of the first such request, printed
    BENCH_MIX_SQL="enroll,complete,quiz/start" ...             # (comma-separated: the first request of each)

Drives bench/locustfile.py's journeys through Flask's test client in this process (no gunicorn, no Locust):
each step's CPU time (time.process_time; PostgreSQL's share not included) and SQL statement count are summed per
endpoint, so the expensive requests of the load test show without the noise of a shared machine's scheduling.
A diagnostic, not a target: `make load-compare` measures the load itself.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from html import unescape
from pathlib import Path

from sqlalchemy import event

from bench.load import LEARNERS, answer_key, make_app, prepare

ROOT = Path(__file__).resolve().parents[1]
STEPS = int(os.environ.get("BENCH_MIX_STEPS", "1500"))
INPUT_RE = re.compile(r"<input\b[^>]*>")
NAME_RE = re.compile(r'\bname="([^"]*)"')
VALUE_RE = re.compile(r'\bvalue="([^"]*)"')


def inputs(html: str) -> list[tuple[str, str]]:
    found = []
    for tag in INPUT_RE.findall(html):
        name, value = NAME_RE.search(tag), VALUE_RE.search(tag)
        if name and value:
            found.append((name.group(1), value.group(1)))
    return found


# as bench/locustfile.py reads an attempt page (that file runs in Locust's own virtualenv)
FIELDSET_RE = re.compile(r'<fieldset class="question">(.*?)</fieldset>', re.S)
LABEL_RE = re.compile(r'<label for="([^"]+)"[^>]*>(.*?)</label>', re.S)
ID_RE = re.compile(r'\bid="([^"]*)"')
LEGEND_RE = re.compile(r"<legend>(.*?)</legend>", re.S)
NOT_PROMPT_RE = re.compile(r'<span class="(?:qnum|hint)">.*?</span>|<[^>]+>', re.S)


def quiz_questions(html: str) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """{field name: (question key, [(value, choice text)])} of every question on an attempt page."""
    questions: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for block in FIELDSET_RE.findall(html):
        legend = LEGEND_RE.search(block)
        prompt = " ".join(unescape(NOT_PROMPT_RE.sub("", legend.group(1) if legend else "")).split())
        labels = {for_id: " ".join(unescape(text).split()) for for_id, text in LABEL_RE.findall(block)}
        for tag in INPUT_RE.findall(block):
            name, value, input_id = NAME_RE.search(tag), VALUE_RE.search(tag), ID_RE.search(tag)
            if name and value and input_id:
                choices = questions.setdefault(name.group(1), ("", []))[1]
                choices.append((value.group(1), labels.get(input_id.group(1), "")))
                questions[name.group(1)] = (question_key(prompt, [text for _, text in choices]), choices)
    return questions


def question_key(prompt: str, texts: list[str]) -> str:
    """A question by its prompt and its choices' texts (as bench/load.py's answer_key spells it)."""
    return "\x1f".join([prompt, *sorted(texts)])


def token(html: str) -> str | None:
    return next((value for name, value in inputs(html) if name == "csrf_token"), None)


class Meter:
    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.sql: dict[str, list[int]] = defaultdict(list)
        self.statements = 0
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        # BENCH_MIX_PROFILE_ONLY=<part of an endpoint's name>: a CPU-time cProfile of only those requests
        self.only = os.environ.get("BENCH_MIX_PROFILE_ONLY", "")
        self.profile: cProfile.Profile | None = cProfile.Profile(time.process_time) if self.only else None
        self.seen: list[str] = []
        self.show_sql = [part for part in os.environ.get("BENCH_MIX_SQL", "").split(",") if part]

    def count(self, _conn, _cursor, statement, *_args) -> None:
        self.statements += 1
        self.seen.append(statement)

    def relabel(self, name: str, new: str, status: int) -> None:
        """File the last request measured under ``name`` under ``new`` instead (known only from its response)."""
        self._show(new)
        self.cpu[new].append(self.cpu[name].pop())
        self.sql[new].append(self.sql[name].pop())
        self.statuses[name][status] -= 1
        self.statuses[new][status] += 1

    def call(self, name: str, fn, *args, **kwargs):
        profile = self.profile if self.profile is not None and self.only in name else None
        before, statements = time.process_time(), self.statements
        self.seen = []
        if profile is not None:
            profile.enable()
        response = fn(*args, **kwargs)
        response.get_data()
        if profile is not None:
            profile.disable()
        self.cpu[name].append(1000 * (time.process_time() - before))
        self.sql[name].append(self.statements - statements)
        self.statuses[name][response.status_code] += 1
        self._show(name)
        return response

    def _show(self, name: str) -> None:
        part = next((part for part in self.show_sql if part in name), None)
        if part is not None:
            width = int(os.environ.get("BENCH_MIX_SQL_WIDTH", "240"))
            print(f"-- the SQL of one {name} request:\n" + "\n".join(" ".join(s.split())[:width] for s in self.seen))
            self.show_sql.remove(part)


class Learner:
    def __init__(self, app, meter: Meter, fixture: dict, emails: list[str]) -> None:
        self.app, self.meter, self.fixture = app, meter, fixture
        self.pool = iter(emails)
        self.client = None
        self.log_in_next()

    def get(self, path: str, name: str):
        return self.meter.call(name, self.client.get, path)

    def post(self, path: str, name: str, data):
        return self.meter.call(name, self.client.post, path, data=data)

    def log_in_next(self) -> None:
        self.email = next(self.pool, None)
        self.next_step: dict[str, str] = {}
        self.finished: set[str] = set()
        self.enrolled = list(self.fixture["enrolled"].get(self.email, []))
        self.client = self.app.test_client()
        if self.email is None:
            return
        page = self.get("/login", "GET /login")
        response = self.post(
            "/login",
            "POST /login",
            {
                "csrf_token": token(page.get_data(as_text=True)),
                "email": self.email,
                "password": self.fixture["password"],
            },
        )
        assert response.status_code == 302, response.status_code

    def step(self) -> None:
        kind = random.choices(["browse", "verify_html", "verify_json", "study"], [3, 2, 2, 6])[0]
        getattr(self, kind)()

    def browse(self) -> None:
        query = random.choice(self.fixture["filters"])
        self.get("/courses" + (f"?{query}" if query else ""), "GET /courses?[filter]")
        self.get(f"/courses/{random.choice(self.fixture['courses'])}", "GET /courses/[slug]")

    def verify_html(self) -> None:
        self.get(f"/verify/{random.choice(self.fixture['certificates'])}", "GET /verify/[id]")

    def verify_json(self) -> None:
        self.get(f"/api/v1/certificates/{random.choice(self.fixture['certificates'])}", "GET /api/v1/certificates/[id]")

    def study(self) -> None:
        if self.email is None:
            self.browse()
            return
        courses = [c for c in self.enrolled if c not in self.finished]
        others = [c for c in self.fixture["courses"] if c not in self.enrolled]
        if others and (not courses or random.random() < 0.05):
            slug = random.choice(others)
            page = self.get(f"/courses/{slug}", "GET /courses/[slug]")
            csrf = token(page.get_data(as_text=True))
            if csrf and self.post(f"/courses/{slug}/enroll", "POST /courses/[slug]/enroll", {"csrf_token": csrf}):
                self.enrolled.append(slug)
            return
        if not courses:
            page = self.get("/dashboard", "GET /dashboard")
            self.post("/logout", "POST /logout", {"csrf_token": token(page.get_data(as_text=True))})
            self.log_in_next()
            return
        slug = random.choice(courses)
        step = self.next_step.pop(slug, None)
        if step is None:
            response = self.get(f"/courses/{slug}/continue", "GET /courses/[slug]/continue")
            if response.status_code != 302:
                return
            step = response.headers["Location"].split("?")[0]
        if step == f"/courses/{slug}":
            self.finished.add(slug)
            self.get(step, "GET /courses/[slug]")
        elif step.endswith("/quiz"):
            self.take_quiz(step)
        else:
            page = self.get(step, "GET /courses/[slug]/[module]/[lesson]")
            csrf = token(page.get_data(as_text=True))
            if csrf is None:
                return
            response = self.post(step + "/complete", "POST .../[lesson]/complete", {"csrf_token": csrf})
            if response.status_code == 303:
                self.next_step[slug] = response.headers["Location"]

    def take_quiz(self, path: str) -> None:
        page = self.get(path, "GET .../quiz")
        csrf = token(page.get_data(as_text=True))
        if csrf is None:
            return
        started = self.post(path + "/start", "POST .../quiz/start", {"csrf_token": csrf})
        if started.status_code != 303:
            return
        attempt_path = started.headers["Location"]
        attempt = self.get(attempt_path, "GET .../quiz/attempts/[n]")
        html = attempt.get_data(as_text=True)
        questions = quiz_questions(html)
        careful = random.random() < 0.75
        data = [("csrf_token", token(html))]
        key = {k: set(v) for k, v in self.fixture["answer_key"].items()}
        for name, (question, choices) in questions.items():
            correct = sorted(value for value, text in choices if text in key.get(question, ()))
            chosen = correct if careful or random.random() < 0.5 else [random.choice(choices)[0]]
            data.extend((name, c) for c in chosen)
        response = self.meter.call("POST .../quiz/attempts/[n]", self.client.post, attempt_path, data=_multi(data))
        if response.status_code == 303 and response.headers["Location"].endswith("/done"):
            # the submission that completes the course issues its certificate: measured apart
            self.meter.relabel("POST .../quiz/attempts/[n]", "POST .../quiz/attempts/[n] (completes)", 303)
        if response.status_code == 303:
            self.get(attempt_path, "GET .../quiz/attempts/[n] (result)")


def _multi(pairs):
    from werkzeug.datastructures import MultiDict

    return MultiDict(pairs)


def main() -> None:
    from core.extensions import db

    folder = Path(tempfile.mkdtemp(prefix="awa-mix-"))
    if not os.environ.get("BENCH_MIX_REUSE"):
        subprocess.run(
            [sys.executable, "-m", "bench.generate"], check=True, env={**os.environ, "BENCH_LEARNERS": str(LEARNERS)}
        )
        url = os.environ.get("DATABASE_URL") or os.environ["TEST_DATABASE_URL"]
        fixture = prepare(make_app(url, folder))
        fixture["answer_key"] = answer_key(url)
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / "mix-fixture.json").write_text(json.dumps(fixture))
    fixture = json.loads((ROOT / "test-artifacts" / "mix-fixture.json").read_text())
    from bench.cpu import make_app as production_app

    app = production_app(True)
    app.config["RATELIMIT_VERIFY"] = "1000000 per minute"
    meter = Meter()
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", meter.count)
    random.seed(7)
    learners = [Learner(app, meter, fixture, pool) for pool in fixture["pools"]]
    profile = cProfile.Profile(time.process_time) if os.environ.get("BENCH_MIX_PROFILE") and not meter.only else None
    meter.cpu.clear()
    meter.sql.clear()
    meter.statuses.clear()
    if profile:
        profile.enable()
    for n in range(STEPS):
        learners[n % len(learners)].step()
    if profile:
        profile.disable()
    total = sum(sum(v) for v in meter.cpu.values())
    count = sum(len(v) for v in meter.cpu.values())
    print(f"{count} requests, {total / count:.2f} ms CPU per request on average (this process)")
    print(f"{'endpoint':44} {'n':>5} {'share':>6} {'CPU ms med':>10} {'mean':>7} {'SQL med':>7} {'max':>4}  statuses")
    for name, values in sorted(meter.cpu.items(), key=lambda kv: -sum(kv[1])):
        sql = meter.sql[name]
        print(
            f"{name:44} {len(values):5} {sum(values) / total:6.1%} {statistics.median(values):10.2f} "
            f"{statistics.mean(values):7.2f} {statistics.median(sql):7.0f} {max(sql):4}  "
            + " ".join(f"{k}:{v}" for k, v in sorted(meter.statuses[name].items()))
        )
    profile = profile or meter.profile
    if profile and profile.getstats():  # (BENCH_MIX_PROFILE_ONLY matching no request: nothing to print)
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        profile.dump_stats(ROOT / "test-artifacts" / "mix.prof")  # for pstats' callers/callees
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)


if __name__ == "__main__":
    main()
