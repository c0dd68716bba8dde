"""Learner pages: catalog, course, lesson, quiz, dashboard. Load → authorize → validate → service → commit."""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, get_template_attribute, redirect, render_template, request, url_for
from flask.views import MethodView
from flask_babel import format_percent, get_translations, gettext
from flask_login import current_user, login_required
from markupsafe import Markup, escape
from sqlalchemy import bindparam, select
from wtforms import SelectChoice

from accounts.permissions import authorize
from core import skeleton
from core.contentcache import cached_page, remember, remember_html
from core.database import utcnow
from core.errors import DomainError
from core.extensions import db
from core.forms import ButtonForm
from core.i18n import current_language, percent, time_tag
from core.skeleton import mark
from courses import lane, programs, services
from courses.catalog import LANGUAGES
from courses.forms import CatalogSearchForm, QuizAnswersError, parse_answers
from courses.models import Course, CourseStatus, Lesson, Module, QuizAttempt
from courses.permissions import can_enroll, can_study
from skills.models import OCCUPATION_GROUPS, Occupation, PlanGoal, Skill

bp = Blueprint("courses", __name__)


@bp.record_once
def _signed_in_lane(state) -> None:
    lane.install(state.app)  # learners' kept course and lesson pages answered in front of Flask (lane.py)


def _filter_choices(form: CatalogSearchForm) -> None:
    """Fill the filter pickers from the framework: built once per content version and page language."""
    choices = remember(("catalog-choices", current_language()), _build_filter_choices)
    for name, options in choices.items():
        getattr(form, name).choices = options


def _build_filter_choices() -> dict[str, list[SelectChoice]]:
    return {
        "goal": [SelectChoice("", gettext("Any plan goal"))]
        + [
            SelectChoice(g.id, f"{g.id}: {g.title}")
            for g in db.session.execute(
                select(PlanGoal.id, PlanGoal.title).where(PlanGoal.retired_at.is_(None)).order_by(PlanGoal.position)
            )
        ],
        "skill": [SelectChoice("", gettext("Any skill"))]
        + [
            SelectChoice(s.id, s.name)
            for s in db.session.execute(
                select(Skill.id, Skill.name).where(Skill.retired_at.is_(None)).order_by(Skill.position)
            )
        ],
        "occupation": [SelectChoice("", gettext("Any occupation"))]
        + [
            SelectChoice(o.code, f"{o.title} ({o.code})")
            for o in db.session.execute(
                select(Occupation.code, Occupation.title)
                .where(Occupation.retired_at.is_(None))
                .order_by(Occupation.title)
            )
        ],
        "audience": [SelectChoice("", gettext("Everyone"))]
        + [SelectChoice(k, str(v)) for k, v in OCCUPATION_GROUPS.items()],
        # each language by its own name ("Español"), marked as that language for screen readers
        "language": [SelectChoice("", gettext("Any language"))]
        + [SelectChoice(code, name, render_kw={"lang": code}) for code, name in LANGUAGES.items()],
    }


FILTER_FIELDS = ("language", "occupation", "audience", "skill", "goal")


def _filter_selects(form: CatalogSearchForm) -> dict[str, Markup]:
    """Each filter's ``<select>``: rendered by WTForms once per content version and page language with nothing
    chosen (its ~100 options were half a signed-in catalog page's CPU), then this request's choice marked by
    inserting ``selected`` into that option: the option WTForms would mark (its value equals the data), spelled
    as WTForms spells it (attributes in name order: ``<option lang="es" selected value="es">``)."""
    selects = {}
    for name in FILTER_FIELDS:
        field = getattr(form, name)
        html, starts = remember(("catalog-select", name, current_language()), lambda field=field: _unchosen(field))
        at = starts.get(field.data) if isinstance(field.data, str) else None
        selects[name] = Markup(html if at is None else html[:at] + "selected " + html[at:])  # noqa: S704 (ours)
    return selects


def _unchosen(field) -> tuple[str, dict[str, int]]:
    """(the field's HTML with no option chosen, {option value: index of its ``value=`` attribute})."""
    data, field.data = field.data, None  # None equals no choice value (they are strings)
    try:
        html = str(field())
    finally:
        field.data = data
    starts = {}
    for choice in field.choices:
        found = html.find(f' value="{escape(choice.value)}"')
        if found >= 0 and choice.value not in starts:
            starts[choice.value] = found + 1
    return html, starts


@bp.get("/courses")
@cached_page(query=("q", "goal", "skill", "occupation", "audience", "language"))
@skeleton.cached_view
def catalog():
    form = CatalogSearchForm(request.args)
    _filter_choices(form)
    valid = form.validate()
    f = services.CatalogFilter(
        q=(form.q.data or "").strip() or None if valid else None,
        goal=form.goal.data or None,
        skill=form.skill.data or None,
        occupation=form.occupation.data or None,
        audience=form.audience.data or None,
        language=form.language.data or None,
    )
    reader = current_language()

    def matching():
        found = services.detached(services.catalog_statement(f, reader_language=reader))
        return found, services.lesson_counts(c.id for c in found)

    courses, counts = remember(("catalog", f, reader), matching)
    filtered = any(vars(f).values())
    return render_template(
        "courses/catalog.html",
        form=form,
        selects=_filter_selects(form),
        courses=courses,
        counts=counts,
        filtered=filtered,
        programs=[] if filtered else remember(("published-programs",), programs.published_programs_detached),
        filters_set=sum(1 for value in (f.goal, f.skill, f.occupation, f.audience, f.language) if value),
    ), (200 if valid else 400)  # a refused search (too long, an unknown filter value) shows why, as a client error


# ---- programs -------------------------------------------------------------------------------------


@bp.get("/programs")
@cached_page
def program_list():
    return render_template("courses/programs.html", programs=programs.published_programs())


def _program_or_404(slug: str):
    program = programs.load_program(slug)
    if program is None:
        abort(404)
    enrollment = programs.get_program_enrollment(current_user, program)
    if program.status is CourseStatus.ARCHIVED and enrollment is None:
        abort(404)  # archived programs stay open to the learners already in them
    return program, enrollment


@bp.get("/programs/<slug>")
def program(slug: str):
    program, enrollment = _program_or_404(slug)
    progress = None
    if current_user.is_authenticated:
        progress = programs.progress(current_user.id, [program])[program.id]
    return render_template(
        "courses/program.html",
        program=program,
        enrollment=enrollment,
        progress=progress,
        form=ButtonForm(),
    )


@bp.post("/programs/<slug>/enroll")
@login_required
def enroll_program(slug: str):
    program, _ = _program_or_404(slug)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        enrollment, created = programs.enroll_program(current_user, program, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("courses.program", slug=slug)), 303
    db.session.commit()
    if enrollment.completed_at is not None:
        flash(
            gettext(
                "You already hold every course certificate of “%(program)s”: your program certificate is ready.",
                program=program.title,
            ),
            "success",
        )
    elif created:
        flash(
            gettext(
                "You are enrolled in “%(program)s” and in each of its courses. Start with the first course.",
                program=program.title,
            ),
            "success",
        )
    return redirect(url_for("courses.program", slug=slug)), 303


def _course_or_404(slug: str, *, shared: bool = True, lock: bool = False) -> tuple[Course, object]:
    """``shared``: the read-only outline from the content cache (courses.services.outline), which the study
    routes also write by (rows take its ids); ``shared=False`` loads the course into this request's session.
    ``lock``: the enrollment is read with its row lock (a request that writes progress takes it anyway)."""
    course = services.outline(slug) if shared else services.load_course(slug)
    if course is None:
        abort(404)
    enrollment = services.get_enrollment(current_user, course, lock=lock)
    if not services.can_view_course(course, enrollment):
        abort(404)
    return course, enrollment


@bp.get("/courses/<slug>")
@cached_page
def course(slug: str):
    course = services.outline(slug)
    if course is None:
        abort(404)
    enrollment, progress = services.learner_state(current_user, course)
    if not services.can_view_course(course, enrollment):
        abort(404)
    step = services.next_step(course, progress) if enrollment else None
    allowed = can_enroll(current_user, course)
    language, linked = current_language(), enrollment is not None
    details = remember(
        ("course-details", slug, language),
        lambda: Markup(render_template("courses/_course_details.html", course=course)),  # noqa: S704 (autoescaped)
    )
    outline = remember(
        ("course-outline-html", slug, language, linked),
        lambda: Markup(render_template("courses/_course_outline.html", course=course, linked=linked)),  # noqa: S704
    )
    fills = {"outline": _with_marks(outline, progress)}
    if enrollment is not None:
        fills["progress"] = _progress_bar(progress.percent)
    completed = enrollment is not None and enrollment.completed_at is not None
    if completed:
        fills["completed_on"] = time_tag(enrollment.completed_at)
    else:
        _offer(request.environ, "course", course, None, enrollment, progress)
    return skeleton.page(
        # a completed enrollment's page links its certificate (personal): rendered in full, never kept
        None if completed else ("course", slug, linked, step is not None, bool(progress.done_steps), allowed),
        lambda: render_template(
            "courses/course.html",
            details=details,
            outline=mark("outline"),
            progress_bar_html=mark("progress"),
            completed_on=mark("completed_on"),
            course=course,
            enrollment=enrollment,
            progress=progress,
            step=step,
            # made only when the page shows the form: making one starts a session (its CSRF token), and a
            # visitor's course page must stay cookie-free so it can be cached and shared
            form=ButtonForm() if allowed else None,
            can_enroll=allowed,
        ),
        fills,
    )


def _progress_bar(percent: int) -> Markup:
    """The progress bar at ``percent`` in the page language (a hundred and one of them per language, no one's
    data: which learner is at that percent is not in it)."""
    return remember(
        ("progress-bar", current_language(), percent),
        lambda: Markup(get_template_attribute("macros/courses.html", "progress_bar")(percent)),  # noqa: S704
    )


DONE_MARK = re.compile(r"<!--done-(lesson|quiz)-(\d+)-->")


def _with_marks(outline: Markup, progress: services.Progress) -> Markup:
    """The shared outline with this learner's ✓ on each lesson completed and quiz passed."""
    done = {"lesson": progress.completed_lessons, "quiz": progress.passed_quizzes}
    if not done["lesson"] and not done["quiz"]:
        return Markup(DONE_MARK.sub("", outline))  # noqa: S704  (only our own comments removed)
    marks = {
        kind: Markup('<span class="done">✓ <span class="visually-hidden">{}</span></span>').format(label)
        for kind, label in (("lesson", gettext("completed")), ("quiz", gettext("passed")))
    }
    # the outline was autoescaped when rendered; only our own comments are replaced, by escaped marks
    return Markup(DONE_MARK.sub(lambda m: marks[m[1]] if int(m[2]) in done[m[1]] else "", outline))  # noqa: S704


@bp.post("/courses/<slug>/enroll")
@login_required
def enroll(slug: str):
    course = services.outline(slug)
    if course is None:
        abort(404)
    if course.status is not CourseStatus.PUBLISHED:
        _course_or_404(slug)  # archived: a 404 unless enrolled (the service then refuses it); a published course
        # needs no read of the enrollment here, the INSERT tells
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        _, created = services.enroll(current_user, course, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("courses.course", slug=slug)), 303
    # worded before the commit, which expires the user whose language it is in (no read-back of the user)
    message = gettext("You are enrolled in “%(course)s”. Here is your first lesson.", course=course.title)
    db.session.commit()
    if created:
        flash(message, "success")
    return redirect(url_for("courses.resume", slug=slug)), 303


@bp.post("/courses/<slug>/renew")
@login_required
def renew(slug: str):
    course, enrollment = _study(slug, shared=False)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if course.status is not CourseStatus.PUBLISHED:
        abort(409)
    try:
        services.start_renewal(enrollment, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "info")
    else:
        db.session.commit()
        flash(gettext("Renewal started: pass the module quizzes again and your certificate is extended."), "success")
    return redirect(url_for("courses.resume", slug=slug)), 303


def _step_url(course: Course, step) -> str:
    kind, module, lesson = step
    if kind == "lesson":
        return url_for("courses.lesson", slug=course.slug, module_slug=module.slug, lesson_slug=lesson.slug)
    return url_for("courses.quiz", slug=course.slug, module_slug=module.slug)


def _study(slug: str, *, shared: bool = True, lock: bool = False):
    """Load a course the current user may study, or abort (404 unknown/draft, 403 not enrolled)."""
    course, enrollment = _course_or_404(slug, shared=shared, lock=lock)
    authorize(can_study(current_user, course, enrollment))
    return course, enrollment


@bp.get("/courses/<slug>/continue")
@login_required
def resume(slug: str):
    course, enrollment = _course_or_404(slug)
    if not can_study(current_user, course, enrollment):
        # "Continue" is a link people bookmark or share: someone not (or no longer) enrolled lands on the course
        # page, which says how to start, rather than on a bare 403
        flash(gettext("You are not enrolled in this course yet: enroll to start it."), "info")
        return redirect(url_for("courses.course", slug=slug))
    progress = services.progress_for(enrollment, course)
    step = services.next_step(course, progress)
    _offer(request.environ, "continue", course, None, enrollment, progress)  # the redirect follows only these
    if step is None:
        return redirect(url_for("courses.course", slug=slug))
    return redirect(_step_url(course, step))


def _find_lesson(course: Course, module_slug: str, lesson_slug: str) -> tuple[Module, Lesson]:
    for module in course.modules:
        if module.slug == module_slug:
            for lesson in module.lessons:
                if lesson.slug == lesson_slug:
                    return module, lesson
    abort(404)


@bp.get("/courses/<slug>/<module_slug>/<lesson_slug>")
@login_required
def lesson(slug: str, module_slug: str, lesson_slug: str):
    course, enrollment, progress = _learning(slug)
    module, lesson = _find_lesson(course, module_slug, lesson_slug)
    done = lesson.id in progress.completed_lessons

    def render() -> str:
        steps = services.course_steps(course)
        index = next(i for i, s in enumerate(steps) if s[2] is lesson)
        return render_template(
            "courses/lesson.html",
            course=course,
            module=module,
            lesson=lesson,
            progress_bar_html=mark("progress"),
            done=done,
            prev_url=_step_url(course, steps[index - 1]) if index > 0 else None,
            next_url=_step_url(course, steps[index + 1]) if index + 1 < len(steps) else None,
            form=ButtonForm(),
        )

    _offer(request.environ, "lesson", course, lesson.id, enrollment, progress)
    return skeleton.page(
        ("lesson", slug, module_slug, lesson_slug, done), render, {"progress": _progress_bar(progress.percent)}
    )


def _offer(environ, kind: str, course, lesson_id, enrollment, progress, extra: tuple = ()) -> None:
    """What the signed-in lane (courses/lane.py) checks before keeping this page, when it asked for it."""
    if environ.get(skeleton.LANE_WANTS) and current_user.is_authenticated:
        lane.offer(environ, kind, course, lesson_id, enrollment, progress, extra)


@bp.post("/courses/<slug>/<module_slug>/<lesson_slug>/complete")
@login_required
def complete_lesson(slug: str, module_slug: str, lesson_slug: str):
    course, enrollment = _study(slug, lock=True)
    _, lesson = _find_lesson(course, module_slug, lesson_slug)
    if not ButtonForm().validate_on_submit():
        abort(400)
    # the completion rule and the next step from this transaction's own view (the new row included): one statement
    finished, step = services.complete_lesson_and_next(enrollment, course, lesson, now=utcnow())
    db.session.commit()
    if finished:
        # the completion page celebrates and shows the certificate (credentials' route, named, not imported)
        return redirect(url_for("credentials.completed", slug=slug)), 303
    return redirect(_step_url(course, step) if step else url_for("courses.course", slug=slug)), 303


def _find_quiz(course: Course, module_slug: str):
    module = next((m for m in course.modules if m.slug == module_slug), None)
    quiz = services.quiz_outline(module) if module is not None else None
    if quiz is None:
        abort(404)
    return module, quiz


def _quiz_page(course, enrollment, module, quiz, *, refused: str | None = None, attempts=None, progress=None):
    """The quiz's page: its rules, the learner's attempts in this cycle and the start (or continue) button.

    ``attempts`` and ``progress``: as read already by the caller (the GET reads them in fewer statements). A page
    that does not depend on the moment (no cooldown running) is a skeleton shared by every learner whose attempts
    read the same (courses/lane.py may then answer it before Flask); a refused start is rendered in full."""
    attempts = services.attempts_for(enrollment, quiz) if attempts is None else attempts
    progress = services.progress_for(enrollment, course) if progress is None else progress
    open_attempt = next((a for a in attempts if a.submitted_at is None), None)
    blocked = None if open_attempt else services.attempt_block_reason(quiz, attempts, now=utcnow())

    def render() -> str:
        return render_template(
            "courses/quiz.html",
            course=course,
            module=module,
            quiz=quiz,
            attempts=attempts,
            best=services.best_attempt(attempts),
            open_attempt=open_attempt,
            blocked=refused or blocked,
            form=ButtonForm(),
            progress=progress,
        )

    if refused:
        # a start refused by the attempt limit or cooldown is a conflict with the quiz's rules
        return render(), 409
    # a cooldown's "wait N more minutes" changes with the clock: such a page is never kept; without one (or when
    # the attempts are used up) the page stays what it is until the attempts change, which are in the key
    settled = open_attempt is not None or blocked is None or services.attempts_used_up(quiz, attempts)
    summary = lane.attempts_summary(attempts)
    if settled:
        _offer(request.environ, "quiz", course, None, enrollment, progress, (summary, True))
    key = ("quiz", course.slug, module.slug, progress.done_steps, summary) if settled else None
    return skeleton.page(key, render), 200


def _learning(slug: str):
    """For the study pages that only read: the course outline, the learner's enrollment (read-only) and progress,
    in one statement; 404 for an unknown or draft course (or an archived one the learner is not in), 403 when not
    enrolled (as ``_study``)."""
    course = services.outline(slug)
    if course is None:
        abort(404)
    enrollment, progress = services.learner_state(current_user, course)
    if not services.can_view_course(course, enrollment):
        abort(404)
    authorize(can_study(current_user, course, enrollment))
    return course, enrollment, progress


@bp.get("/courses/<slug>/<module_slug>/quiz")
@login_required
def quiz(slug: str, module_slug: str):
    course, enrollment, progress = _learning(slug)
    module, quiz = _find_quiz(course, module_slug)
    return _quiz_page(
        course, enrollment, module, quiz, attempts=services.attempts_for(enrollment, quiz), progress=progress
    )


@bp.post("/courses/<slug>/<module_slug>/quiz/start")
@login_required
def start_quiz(slug: str, module_slug: str):
    course, enrollment = _study(slug)
    module, quiz = _find_quiz(course, module_slug)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        attempt = services.start_attempt(enrollment, quiz, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        return _quiz_page(course, enrollment, module, quiz, refused=error.message)
    number = attempt.attempt_no  # read before the commit expires it (no reload for the address)
    db.session.commit()
    return redirect(url_for("courses.attempt", slug=slug, module_slug=module_slug, number=number)), 303


# built once: a submission reads its attempt by it
_ATTEMPT = select(QuizAttempt).where(
    QuizAttempt.enrollment_id == bindparam("enrollment"),
    QuizAttempt.quiz_id == bindparam("quiz"),
    QuizAttempt.attempt_no == bindparam("number"),
)


def _attempt_or_404(enrollment, quiz, number: int) -> QuizAttempt:
    attempt = db.session.scalar(_ATTEMPT, {"enrollment": enrollment.id, "quiz": quiz.id, "number": number})
    if attempt is None:
        abort(404)
    return attempt


def _attempt_of(slug: str, module_slug: str, number: int, *, lock: bool = False):
    course, enrollment = _study(slug, lock=lock)
    module, quiz = _find_quiz(course, module_slug)
    return course, enrollment, module, quiz, _attempt_or_404(enrollment, quiz, number)


def _attempt_page(
    course,
    enrollment,
    module,
    quiz,
    attempt,
    *,
    error=None,
    previous=None,
    status: int = 200,
    attempts=None,
    progress=None,
):
    """The open attempt's questions, or once it is submitted, its result (what to reveal follows the quiz's rules).
    ``attempts`` (this cycle's) and ``progress``: as the caller read them already, else read here.

    Both pages are skeletons (core/skeleton.py) kept per address and what their templates branch on; their
    question lists are put together from pieces kept per question and choice (``_attempt_questions``,
    ``_result_answers``) in this attempt's order, with its choice tokens, chosen answers and verdicts."""
    questions, choices, _ = _quiz_ids(quiz)
    # (question id, its choice ids) in this attempt's order, of the questions and choices the quiz still has
    layout = [(qid, [c for c in cids if c in choices]) for qid, cids in attempt.layout if qid in questions]
    fills: dict = {}
    if error:
        fills["error"] = error
    if attempt.submitted_at is None:
        if attempt.tokens is None:  # opened before choice tokens existed
            services.ensure_tokens(attempt)
            db.session.commit()
        fills["questions"] = _attempt_questions(course, quiz, layout, services.token_of(attempt), previous)
        page = skeleton.page(
            ("quiz-attempt", course.slug, module.slug, bool(error)),
            lambda: render_template(
                "courses/attempt.html",
                course=course,
                module=module,
                quiz=quiz,
                attempt=attempt,
                questions=mark("questions"),
                form=ButtonForm(),
                error=mark("error") if error else None,
            ),
            fills,
            lane_marks=frozenset({"questions"}),
        )
        return page, status
    progress = services.progress_for(enrollment, course) if progress is None else progress
    if request.environ.get(skeleton.LANE_WANTS):
        lane.AttemptPage.keep_plan(request.environ, course)
    step = services.next_step(course, progress)
    next_url = _step_url(course, step) if step else None
    answers = {int(k): set(v) for k, v in (attempt.answers or {}).items()}
    attempts = services.attempts_for(enrollment, quiz) if attempts is None else attempts
    blocked = services.attempt_block_reason(quiz, attempts, now=utcnow())
    reveal = bool(attempt.passed) or (
        blocked is not None
        and quiz.max_attempts is not None
        and len([a for a in attempts if a.submitted_at]) >= quiz.max_attempts
    )
    fills["answers"] = _result_answers(course, quiz, layout, answers, reveal)
    fills["progress"] = _progress_bar(progress.percent)
    fills["score"] = percent(attempt.score)
    if blocked:
        fills["blocked"] = blocked
    if next_url:
        fills["next_url"] = next_url
    if request.environ.get(skeleton.LANE_WANTS):
        request.environ[lane.RESULT_SEEN] = (blocked is not None, get_translations())
    page = skeleton.page(
        (
            "quiz-result",
            course.slug,
            module.slug,
            bool(attempt.passed),
            bool(blocked),
            bool(next_url),
            reveal,
            bool(error),
        ),
        lambda: render_template(
            "courses/result.html",
            course=course,
            module=module,
            quiz=quiz,
            attempt=attempt,
            answers_html=mark("answers"),
            progress_bar_html=mark("progress"),
            score=mark("score"),
            reveal=reveal,
            next_url=mark("next_url") if next_url else None,
            blocked=mark("blocked") if blocked else None,
            form=ButtonForm(),
            error=mark("error") if error else None,
        ),
        fills,
        lane_marks=frozenset({"blocked"}),
    )
    return page, status


def _quiz_ids(quiz) -> tuple[frozenset, frozenset, dict]:
    """(the quiz's question ids, its choice ids, {question id: its right choice ids}), once per content version."""

    def build():
        questions = frozenset(q.id for q in quiz.questions)
        choices = frozenset(c.id for q in quiz.questions for c in q.choices)
        return questions, choices, {q.id: {c.id for c in q.choices if c.correct} for q in quiz.questions}

    return remember(("quiz-ids", quiz.id), build)


def _piece(macro: str, *args) -> str:
    """A piece of templates/courses/_quiz_parts.html as a ``str.format`` pattern: its markers become fields."""
    parts = skeleton.split(str(get_template_attribute("courses/_quiz_parts.html", macro)(*args)))
    return "".join(
        part.replace("{", "{{").replace("}", "}}") if index % 2 == 0 else "{" + part + "}"
        for index, part in enumerate(parts)
    )


def _attempt_pieces(course, quiz) -> tuple[dict, dict, str]:
    """({question id: its heading}, {choice id: its markup}, a question's end) for this page language, as
    ``str.format`` patterns of the position, total, choice number, token and "checked"."""
    marks = {name: mark(name) for name in ("qpos", "total", "cidx", "token", "checked")}
    cid, qname = Markup("c-{}-{}").format(marks["qpos"], marks["cidx"]), Markup("q-{}").format(marks["qpos"])
    heads, items = {}, {}
    for question in quiz.questions:
        heads[question.id] = _piece("attempt_question", question, course, marks["qpos"], marks["total"])
        multiple = question.kind.value == "multiple"
        for choice in question.choices:
            items[choice.id] = _piece(
                "attempt_choice", choice, course, multiple, cid, qname, marks["token"], marks["checked"]
            )
    return heads, items, str(get_template_attribute("courses/_quiz_parts.html", "attempt_question_end")())


def _attempt_questions(course, quiz, layout, tokens: dict, previous) -> Markup:
    """The open attempt's questions in its order, with its choice tokens (and the answers of a refused
    submission checked again): what the old template loop rendered, from pieces kept per content version.
    When the signed-in lane asked for this page, the pieces are left for it (it fills the page itself next)."""
    pieces = remember(("quiz-attempt-pieces", quiz.id, current_language()), lambda: _attempt_pieces(course, quiz))
    if request.environ.get(skeleton.LANE_WANTS) and request.method == "GET" and not previous:
        questions, choices, _ = _quiz_ids(quiz)
        request.environ[lane.ATTEMPT_PIECES] = (*pieces, questions, choices)
    return Markup(lane.attempt_questions(pieces, layout, tokens, previous))  # noqa: S704  (autoescaped pieces)


def _result_pieces(course, quiz, reveal: bool) -> tuple[dict, dict, dict]:
    """({question id: {right: its heading}}, {choice id: {chosen: its line}}, {question id: its end}) for this
    page language, when the answers are revealed or not."""
    heads, items, ends = {}, {}, {}
    parts = get_template_attribute("courses/_quiz_parts.html", "result_question")
    item = get_template_attribute("courses/_quiz_parts.html", "result_choice")
    end = get_template_attribute("courses/_quiz_parts.html", "result_question_end")
    for question in quiz.questions:
        heads[question.id] = {right: str(parts(question, course, reveal, right)) for right in (True, False)}
        ends[question.id] = str(end(question, course, reveal))
        for choice in question.choices:
            items[choice.id] = {chosen: str(item(choice, course, chosen, reveal)) for chosen in (True, False)}
    return heads, items, ends


def _result_answers(course, quiz, layout, answers: dict, reveal: bool) -> Markup:
    """The submitted attempt's questions in its order, its answers marked (and, ``reveal``, the right ones and
    why): what the old template loop rendered, from pieces kept per content version."""
    heads, items, ends = remember(
        ("quiz-result-pieces", quiz.id, current_language(), reveal), lambda: _result_pieces(course, quiz, reveal)
    )
    correct = _quiz_ids(quiz)[2]
    out: list[str] = []
    nothing: set = set()
    for qid, choices in layout:
        chosen = answers.get(qid, nothing)
        out.append(heads[qid][chosen == correct[qid]])
        out.extend(items[cid][cid in chosen] for cid in choices)
        out.append(ends[qid])
    return Markup("".join(out))  # noqa: S704  (autoescaped pieces)


class AttemptView(MethodView):
    """One quiz attempt at one address (endpoint ``courses.attempt``): GET shows it, POST submits its answers.

    The answer fields are ``q-<position>`` holding this attempt's choice tokens (courses.forms.parse_answers).
    """

    decorators = [login_required]

    def get(self, slug: str, module_slug: str, number: int):
        # three statements: the login's user, the enrollment with its progress, and the quiz's attempts (this
        # one among them, and this cycle's for the result page's rules)
        course, enrollment, progress = _learning(slug)
        module, quiz = _find_quiz(course, module_slug)
        every = services.attempt_rows(enrollment, quiz)
        attempt = next((a for a in every if a.attempt_no == number), None)
        if attempt is None:
            abort(404)
        if attempt.tokens is None and attempt.submitted_at is None:
            attempt = _attempt_or_404(enrollment, quiz, number)  # opened before tokens: given them (a write)
        attempts = services.in_cycle(enrollment, every)
        return _attempt_page(course, enrollment, module, quiz, attempt, attempts=attempts, progress=progress)

    def post(self, slug: str, module_slug: str, number: int):
        # the enrollment's row lock first (grading takes it anyway): the attempt is then read as it stands
        course, enrollment, module, quiz, attempt = _attempt_of(slug, module_slug, number, lock=True)
        if not ButtonForm().validate_on_submit():
            abort(400)
        try:
            answers = services.answers_from_form(attempt, quiz, parse_answers(request.form))
            _, finished = services.submit_attempt(enrollment, attempt, quiz, answers, now=utcnow())
        except (QuizAnswersError, DomainError) as problem:
            db.session.rollback()
            # read after the rollback: an attempt submitted meanwhile (a double submit) is a conflict, not bad input
            status = 409 if attempt.submitted_at is not None else 422
            attempt = _attempt_or_404(enrollment, quiz, number)
            error = getattr(problem, "message", None) or str(problem)
            return _attempt_page(
                course, enrollment, module, quiz, attempt, error=error, previous=request.form, status=status
            )
        # worded before the commit, which expires the attempt it quotes (no read-back of the row)
        message = finished and gettext(
            "You passed “%(quiz)s” with %(score)s: that was the last step.",
            quiz=quiz.title,
            score=format_percent(attempt.score / 100),
        )
        db.session.commit()
        if finished:
            flash(message, "success")
            return redirect(url_for("credentials.completed", slug=slug)), 303
        return redirect(url_for("courses.attempt", slug=slug, module_slug=module_slug, number=number)), 303


bp.add_url_rule("/courses/<slug>/<module_slug>/quiz/attempts/<int:number>", view_func=AttemptView.as_view("attempt"))


@bp.get("/media/<sha256>.<extension>")
def media(sha256: str, extension: str):
    """Lesson images: served as stored (from whichever storage every server shares), with a type from our
    records and headers that stop sniffing. A missing object is a 404; a storage outage a 503 (core/errors)."""
    from flask import Response

    from courses.media import media_storage
    from courses.models import MediaFile

    item = db.session.scalar(select(MediaFile).where(MediaFile.sha256 == sha256, MediaFile.extension == extension))
    if item is None:
        abort(404)
    if request.if_none_match.contains(item.sha256):
        data = b""  # the browser holds these exact bytes (the ETag is their hash): no need to fetch them
    else:
        try:
            data = media_storage().read(item.filename)
        except FileNotFoundError:
            abort(404)
    response = Response(data, mimetype=item.mime_type)
    response.set_etag(item.sha256)
    response.cache_control.public = True
    response.cache_control.max_age = 31_536_000  # named by content: never changes
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Content-Disposition"] = f'inline; filename="{item.filename}"'
    return response.make_conditional(request)


@bp.get("/dashboard")
@login_required
def dashboard():
    rows = services.dashboard(current_user)
    # the learner's own page: offered whole to the signed-in lane when it asked (kept for them alone, lane.py)
    return skeleton.personal_page(
        lambda: render_template(
            "courses/dashboard.html",
            programs=programs.my_programs(current_user),
            in_progress=[r for r in rows if r.enrollment.completed_at is None],
            completed=[r for r in rows if r.enrollment.completed_at is not None],
            card=_dashboard_card,
        )
    )


def _day(moment) -> str | None:
    return moment.date().isoformat() if moment is not None else None


def _dashboard_card(kind: str, item, status: str | None = None) -> Markup:
    """One dashboard card (templates/courses/_dashboard_cards.html), rendered once per content version, page
    language and the values it shows: the course or program, the percentage, the next step, the day completed,
    the certificate status. Those say nothing about whose card it is, so learners at the same point share it."""
    if kind == "course":
        key = (item.course.id, item.percent, item.next_title)
        args = (item,)
    elif kind == "completed":
        key = (item.course.id, _day(item.enrollment.completed_at), status)
        args = (item, status)
    else:
        next_course = item.next_course
        completed_at = item.enrollment.completed_at if item.enrollment else None
        key = (item.program.id, item.percent, len(item.courses), item.completed_courses, _day(completed_at))
        key += (next_course.id if next_course else None,)
        args = (item,)
    macro = f"{kind}_card"
    return Markup(  # noqa: S704  (rendered by the autoescaping template)
        remember_html(
            ("dashboard-card", kind, current_language(), *key),
            lambda: str(get_template_attribute("courses/_dashboard_cards.html", macro)(*args)),
        )
    )
