"""Locust virtual users for `make load` (runs in .venv-load, never imports the app).

Each user logs in as its own learner (its pool of learners comes from LOAD_FIXTURE, written by bench.load;
a learner with every course done logs out and the next one logs in) and, without think time, mixes:
catalog browsing (filters, course pages), studying (the next step of a course: a
lesson marked complete, or a quiz started and submitted with answers read from the attempt page, some
right, some wrong), enrolling in a further course, and employer verification (/verify/<id> HTML and
/api/v1/certificates/<id> JSON). Every acknowledged action is appended to LOAD_ACTIONS as a JSON line for
the consistency check; every response status is counted there too.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter
from html import unescape
from urllib.parse import urlencode, urlsplit

import gevent
from locust import FastHttpUser, constant, events, task

FIXTURE = json.loads(open(os.environ["LOAD_FIXTURE"]).read())  # noqa: SIM115 (read once at import)
ACTIONS = open(os.environ["LOAD_ACTIONS"], "a", buffering=1)  # noqa: SIM115 (closed on quitting)
# the quiz answers, by the text of the choices: the form's values are per-attempt tokens (or, on older code,
# choice ids); {"\x1f".join(sorted texts of a question's choices): [texts of its correct choices]}
ANSWER_KEY = {key: set(texts) for key, texts in FIXTURE["answer_key"].items()}
POOLS = iter(FIXTURE["pools"])
NEW_CERTIFICATES: list[str] = []  # earned during the run: verified too
STATUSES: Counter = Counter()
LOGGED_IN: list[float] = []  # login durations; the measured window starts when every user is logged in
STARTED = time.monotonic()
MEASURE_SECONDS = float(os.environ.get("LOAD_MEASURE_SECONDS", "0"))  # 0: until --run-time ends

INPUT_RE = re.compile(r"<input\b[^>]*>")  # attributes in any order
NAME_RE = re.compile(r'\bname="([^"]*)"')
VALUE_RE = re.compile(r'\bvalue="([^"]*)"')
PASS_MARK_RE = re.compile(r"You need (\d+)% to pass")
CERTIFICATE_RE = re.compile(r"/certificates/([0-9A-Z]{4}(?:-[0-9A-Z]{4}){6})")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def record(kind: str, **fields) -> None:
    ACTIONS.write(json.dumps({"kind": kind, **fields}) + "\n")


@events.request.add_listener
def _count_status(response=None, exception=None, **_) -> None:
    status = getattr(response, "status_code", 0) or 0
    STATUSES["connection error" if status == 0 else str(status)] += 1


@events.test_start.add_listener
def _started(**_) -> None:
    global STARTED
    STARTED = time.monotonic()


@events.quitting.add_listener
def _close(**_) -> None:
    record("statuses", counts=dict(STATUSES))
    ACTIONS.close()


def path_of(location: str) -> str:
    return urlsplit(location).path


def inputs(html: str) -> list[tuple[str, str]]:
    """(name, value) of every input on the page."""
    found = []
    for tag in INPUT_RE.findall(html):
        name, value = NAME_RE.search(tag), VALUE_RE.search(tag)
        if name and value:
            found.append((name.group(1), value.group(1)))
    return found


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


class Learner(FastHttpUser):
    wait_time = constant(0)  # closed loop: as fast as the server answers

    def on_start(self) -> None:
        self.pool = iter(next(POOLS))  # this user's own learners, one after another
        started = time.perf_counter()
        self.log_in_next()
        LOGGED_IN.append(time.perf_counter() - started)
        if len(LOGGED_IN) == len(FIXTURE["pools"]):
            # a login is a deliberately slow password hash: the storm of them at the start is not the steady
            # state, so Locust's figures restart here (the status counts keep everything)
            self.environment.runner.stats.reset_all()
            record("warmup", seconds=time.monotonic() - STARTED, logins=sorted(LOGGED_IN))
            if MEASURE_SECONDS:
                # a fixed measured window after the warm-up, however long the logins took (bench/load_compare.py)
                gevent.spawn_later(MEASURE_SECONDS, self.environment.runner.quit)

    def log_in_next(self) -> None:
        """Log in as this user's next learner (a learner with every course done hands over to a new one)."""
        self.email = next(self.pool, None)
        self.next_step: dict[str, str] = {}  # course slug → the path of its next step
        self.finished: set[str] = set()
        self.enrolled = list(FIXTURE["enrolled"].get(self.email, []))
        if self.email is None:
            return
        page = self.client.get("/login", name="/login")
        response = self.client.post(
            "/login",
            data=urlencode({"csrf_token": token(page.text), "email": self.email, "password": FIXTURE["password"]}),
            headers=FORM,
            name="/login",
            allow_redirects=False,
        )
        if response.status_code != 302:
            raise RuntimeError(f"{self.email} could not log in: {response.status_code}")

    def log_out(self) -> None:
        page = self.client.get("/dashboard", name="/dashboard")
        self.client.post(
            "/logout",
            data=urlencode({"csrf_token": token(page.text)}),
            headers=FORM,
            name="/logout",
            allow_redirects=False,
        )
        self.client.cookiejar.clear()

    # ---- catalog ------------------------------------------------------------------------------

    @task(3)
    def browse(self) -> None:
        query = random.choice(FIXTURE["filters"])
        self.client.get("/courses" + (f"?{query}" if query else ""), name="/courses?[filter]")
        self.client.get(f"/courses/{random.choice(FIXTURE['courses'])}", name="/courses/[slug]")

    # ---- verification -------------------------------------------------------------------------

    @task(2)
    def verify_html(self) -> None:
        public_id = self.some_certificate()
        response = self.client.get(f"/verify/{public_id}", name="/verify/[id]")
        if response.status_code == 200:
            record("verify", id=public_id)

    @task(2)
    def verify_json(self) -> None:
        public_id = self.some_certificate()
        response = self.client.get(f"/api/v1/certificates/{public_id}", name="/api/v1/certificates/[id]")
        if response.status_code == 200:
            record("verify", id=public_id)

    def some_certificate(self) -> str:
        if NEW_CERTIFICATES and random.random() < 0.3:
            return random.choice(NEW_CERTIFICATES)
        return random.choice(FIXTURE["certificates"])

    # ---- studying -----------------------------------------------------------------------------

    @task(6)
    def study(self) -> None:
        if self.email is None:  # every learner of this user is done
            self.browse()
            return
        courses = [c for c in self.enrolled if c not in self.finished]
        others = [c for c in FIXTURE["courses"] if c not in self.enrolled]
        if others and (not courses or random.random() < 0.05):
            self.enroll(random.choice(others))
            return
        if not courses:
            self.log_out()
            self.log_in_next()
            return
        slug = random.choice(courses)
        step = self.next_step.pop(slug, None)
        if step is None:
            response = self.client.get(
                f"/courses/{slug}/continue", name="/courses/[slug]/continue", allow_redirects=False
            )
            if response.status_code != 302:
                return
            step = path_of(response.headers["Location"])
        if step == f"/courses/{slug}":
            self.course_finished(slug)
        elif step.endswith("/quiz"):
            self.take_quiz(slug, step)
        else:
            self.complete_lesson(slug, step)

    def complete_lesson(self, slug: str, path: str) -> None:
        page = self.client.get(path, name="/courses/[slug]/[module]/[lesson]")
        csrf = token(page.text) if page.status_code == 200 else None
        if csrf is None:
            return
        response = self.client.post(
            path + "/complete",
            data=urlencode({"csrf_token": csrf}),
            headers=FORM,
            name="/courses/[slug]/[module]/[lesson]/complete",
            allow_redirects=False,
        )
        if response.status_code in (200, 303):
            _, _, module, lesson = path.strip("/").split("/")
            record("lesson", user=self.email, course=slug, module=module, lesson=lesson)
            if response.status_code == 303:
                self.next_step[slug] = path_of(response.headers["Location"])

    def take_quiz(self, slug: str, path: str) -> None:
        page = self.client.get(path, name="/courses/[slug]/[module]/quiz")
        csrf = token(page.text) if page.status_code == 200 else None
        if csrf is None:
            return
        started = self.client.post(
            path + "/start",
            data=urlencode({"csrf_token": csrf}),
            headers=FORM,
            name="/courses/[slug]/[module]/quiz/start",
            allow_redirects=False,
        )
        if started.status_code != 303:
            return
        attempt_path = path_of(started.headers["Location"])
        attempt = self.client.get(attempt_path, name="/courses/[slug]/[module]/quiz/attempts/[n]")
        if attempt.status_code != 200:
            return
        questions = quiz_questions(attempt.text)
        pass_mark = int(PASS_MARK_RE.search(attempt.text).group(1))
        # three in four attempts answer everything right; the others guess on each question
        careful = random.random() < 0.75
        answers, right = [], 0
        for name, (key, choices) in questions.items():
            correct = sorted(value for value, text in choices if text in ANSWER_KEY.get(key, ()))
            chosen = correct if careful or random.random() < 0.5 else [random.choice(choices)[0]]
            right += sorted(chosen) == correct
            answers.extend((name, c) for c in chosen)
        score = round(100 * right / len(questions))
        response = self.client.post(
            attempt_path,
            data=urlencode([("csrf_token", token(attempt.text)), *answers]),
            headers=FORM,
            name="/courses/[slug]/[module]/quiz/attempts/[n]",
            allow_redirects=False,
        )
        if response.status_code == 303:
            _, _, module, _, _, number = attempt_path.strip("/").split("/")
            record(
                "quiz",
                user=self.email,
                course=slug,
                module=module,
                attempt=int(number),
                score=score,
                passed=score >= pass_mark,
            )
            self.client.get(attempt_path, name="/courses/[slug]/[module]/quiz/attempts/[n] (result)")

    def course_finished(self, slug: str) -> None:
        self.finished.add(slug)
        page = self.client.get(f"/courses/{slug}", name="/courses/[slug]")
        match = CERTIFICATE_RE.search(page.text)
        if match:
            NEW_CERTIFICATES.append(match.group(1))

    def enroll(self, slug: str) -> None:
        page = self.client.get(f"/courses/{slug}", name="/courses/[slug]")
        csrf = token(page.text) if page.status_code == 200 else None
        if csrf is None:
            return
        response = self.client.post(
            f"/courses/{slug}/enroll",
            data=urlencode({"csrf_token": csrf}),
            headers=FORM,
            name="/courses/[slug]/enroll",
            allow_redirects=False,
        )
        if response.status_code == 303:
            record("enroll", user=self.email, course=slug)
            self.enrolled.append(slug)
