"""Authoring rules: drafts, editing, publishing checks and impact, versions, zip bundles. Flush only."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from core import audit
from core.errors import DomainError
from core.extensions import db
from core.yamlload import quoted
from courses.catalog import (
    SLUG,
    TRUE_FALSE_WORDS,
    CatalogError,
    ChoiceSpec,
    CourseSpec,
    QuestionSpec,
    apply_spec,
    course_spec,
    parse_bundle,
    quiz_warnings,
    spec_files,
)
from courses.models import (
    Course,
    CourseDraft,
    CourseStatus,
    Enrollment,
    Lesson,
    MediaFile,
    Module,
    Program,
    ProgramCourse,
    Quiz,
)
from courses.spec import details, from_dict, move, to_dict, unique_slug  # noqa: F401  (move, unique_slug: studio API)

MAX_ZIP_BYTES = 5 * 1024 * 1024
MAX_UNZIPPED_BYTES = 20 * 1024 * 1024
MAX_ZIP_FILES = 500


class StaleDraft(DomainError):
    """Someone saved the draft after this form was opened."""

    def __init__(self) -> None:
        super().__init__(
            _(
                "This course was changed by someone else since you opened it. Reload the page, check "
                "their changes and make yours again."
            )
        )


# ---- specs as JSON (the shape and its tolerant loading live in courses/spec.py) ---------------------------


def spec_to_dict(spec: CourseSpec) -> dict:
    return to_dict(spec)


def spec_from_dict(data: dict) -> CourseSpec:
    """The draft's spec; drafts saved before a field existed get its default, unknown keys are ignored."""
    return from_dict(data)


# ---- drafts ------------------------------------------------------------------------------------


def get_draft(course: Course) -> CourseDraft | None:
    return db.session.scalar(select(CourseDraft).where(CourseDraft.course_id == course.id))


@dataclass(frozen=True)
class NoDraft:
    """Stands for a draft nobody has saved yet: pages carry the revision the first save will create."""

    id: None = None
    revision: int = 1  # CourseDraft.revision's default


NO_DRAFT = NoDraft()


def editing(course: Course) -> tuple[CourseDraft | None, CourseSpec]:
    """What the studio shows for ``course``: its draft and the draft's spec, or (None, the live course's spec)
    when nobody has saved a change yet. Reads only: opening a studio page writes nothing."""
    draft = get_draft(course)
    return draft, spec_from_dict(draft.spec) if draft else course_spec(course)


def open_draft(course: Course, actor, *, now: datetime) -> CourseDraft:
    """The course's draft, started from the live course if there is none (editing never touches learners).

    Flushes; the caller commits (with the edit it is about to save). Two first edits racing each other both get
    the one draft: the unique course_id decides, and the loser reads the winner's row.
    """
    draft = get_draft(course)
    if draft is not None:
        return draft
    draft = CourseDraft(
        course_id=course.id,
        spec=spec_to_dict(course_spec(course)),
        created_at=now,
        updated_at=now,
        updated_by_id=getattr(actor, "id", None),
    )
    try:
        with db.session.begin_nested():
            db.session.add(draft)
    except IntegrityError:
        draft = get_draft(course)
    return draft


def create_course(actor, spec: CourseSpec, *, now: datetime) -> Course:
    """A new draft course from ``spec``'s slug and details (invisible to learners until published), with its draft.

    Raises DomainError if the slug is taken. Flushes; the caller commits.
    """
    if db.session.scalar(select(Course.id).where(Course.slug == spec.slug)) is not None:
        raise DomainError(_("Another course already uses this web address (slug). Choose another."), field="slug")
    course = Course(
        slug=spec.slug, **details(spec), status=CourseStatus.DRAFT, version=0, created_at=now, updated_at=now
    )
    db.session.add(course)
    db.session.flush()
    start = CourseSpec(slug=spec.slug, **details(spec))
    db.session.add(
        CourseDraft(
            course_id=course.id, spec=spec_to_dict(start), created_at=now, updated_at=now, updated_by_id=actor.id
        )
    )
    audit.record(actor, "course.created", "course", spec.slug, f"Created draft course “{spec.title}”", now=now)
    db.session.flush()
    return course


def save_draft(
    draft: CourseDraft, spec: CourseSpec, *, expected_revision: int, actor, now: datetime, summary: str
) -> None:
    """Store an edited spec if nobody saved since ``expected_revision``. Raises StaleDraft. Caller commits."""
    saved = db.session.execute(
        update(CourseDraft)
        .where(CourseDraft.id == draft.id, CourseDraft.revision == expected_revision)
        .values(spec=spec_to_dict(spec), revision=CourseDraft.revision + 1, updated_at=now, updated_by_id=actor.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if saved != 1:
        raise StaleDraft()
    db.session.refresh(draft)
    audit.record(actor, "course.edited", "course", spec.slug, summary, now=now)


def discard_draft(draft: CourseDraft, actor, *, now: datetime) -> None:
    course = draft.course
    if course.status is CourseStatus.DRAFT and course.version == 0:
        raise DomainError(_("This course has never been published, so there is nothing to go back to."))
    db.session.delete(draft)
    audit.record(
        actor, "course.draft_discarded", "course", course.slug, f"Discarded the draft of “{course.title}”", now=now
    )
    db.session.flush()


# ---- quiz questions as plain text (no JavaScript needed to add choices) ---------------------------------

QUESTIONS_HELP = _l(
    "One question per block, blocks separated by an empty line:\n"
    '? The question (or ?* for "choose all that apply")\n'
    "* a correct choice\n"
    "- a wrong choice\n"
    "> The explanation shown after answering"
)


def parse_questions(text: str) -> list[QuestionSpec]:
    """Read the studio's question text. Raises DomainError naming the line of the first problem."""
    questions: list[QuestionSpec] = []
    current: dict | None = None
    problems: list[str] = []

    def finish(line: int) -> None:
        if current is None:
            return
        q = current
        right = sum(c.correct for c in q["choices"])
        if not q["prompt"]:
            problems.append(_("Line %(line)d: the question text is empty.", line=q["line"]))
        if not 2 <= len(q["choices"]) <= 8:
            problems.append(
                _("Line %(line)d: a question needs 2 to 8 choices (lines starting * or -).", line=q["line"])
            )
        if not q["explanation"]:
            problems.append(_("Line %(line)d: add an explanation (a line starting >).", line=q["line"]))
        texts = [c.text.lower() for c in q["choices"]]
        if q["multiple"]:
            kind = "multiple"
            if right < 1:
                problems.append(_("Line %(line)d: mark at least one correct choice with *.", line=q["line"]))
        else:
            pairs = [sorted(w.lower() for w in words) for words in TRUE_FALSE_WORDS.values()]
            kind = "true_false" if sorted(texts) in pairs else "single"
            if right != 1:
                problems.append(
                    _(
                        "Line %(line)d: mark exactly one correct choice with * (or start the "
                        "question with ?* for choose-all-that-apply).",
                        line=q["line"],
                    )
                )
        if len(set(texts)) != len(texts):
            problems.append(_("Line %(line)d: two choices have the same text.", line=q["line"]))
        questions.append(
            QuestionSpec(kind=kind, prompt=q["prompt"], explanation=q["explanation"], choices=q["choices"])
        )

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        marker, rest = line[:2], line[2:].strip() if len(line) > 1 else ""
        if line.startswith("?*") or line.startswith("? ") or line == "?":
            finish(number)
            multiple = line.startswith("?*")
            current = {
                "line": number,
                "prompt": line[2:].strip(),
                "multiple": multiple,
                "choices": [],
                "explanation": "",
            }
        elif current is None:
            problems.append(_("Line %(line)d: start each question with a line beginning with ?.", line=number))
        elif marker in ("* ", "- ") or line in ("*", "-"):
            if not rest:
                problems.append(_("Line %(line)d: the choice is empty.", line=number))
            current["choices"].append(ChoiceSpec(text=rest, correct=line.startswith("*")))
        elif line.startswith(">"):
            current["explanation"] = (current["explanation"] + " " + line[1:].strip()).strip()
        else:
            problems.append(_("Line %(line)d: lines start with ?, *, - or > (see the help).", line=number))
    finish(0)
    if not questions and not problems:
        problems.append(_("Add at least one question."))
    if problems:
        raise DomainError(" ".join(problems[:5]), field="questions")
    return questions


def questions_text(questions: list[QuestionSpec]) -> str:
    blocks = []
    for q in questions:
        lines = [("?* " if q.kind == "multiple" else "? ") + q.prompt]
        lines += [("* " if c.correct else "- ") + c.text for c in q.choices]
        lines.append("> " + q.explanation)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# ---- publishing --------------------------------------------------------------------------------


def publish_problems(spec: CourseSpec) -> list[str]:
    """Everything that blocks publishing, in words an author can act on."""
    problems = []
    if not spec.skills:
        problems.append(_("Tag the course with at least one skill."))
    if not spec.modules:
        problems.append(_("Add at least one module."))
    for n, module in enumerate(spec.modules, 1):
        if not module.lessons:
            problems.append(_("Module %(num)d “%(title)s” needs at least one lesson.", num=n, title=module.title))
        if module.quiz is None or not module.quiz.questions:
            problems.append(
                _("Module %(num)d “%(title)s” needs a quiz with at least one question.", num=n, title=module.title)
            )
        elif not 1 <= module.quiz.pass_mark <= 100:
            problems.append(_("Module %(num)d: the pass mark of its quiz cannot be reached.", num=n))
    if problems:
        return problems
    files = spec_files(spec)
    try:
        parse_bundle(lambda path: files[path])
    except CatalogError as error:
        problems.extend(error.problems)
    return problems


def publish_warnings(spec: CourseSpec) -> list[str]:
    """What an author should fix but may publish anyway: quiz balance, with the numbers.

    Reading level is left to `flask courses readability` and the catalog tests: textstat's first call loads the
    CMU dictionary (seconds), too slow for a page an author opens while editing.
    """
    return quiz_warnings(spec)


def stale_lessons(*, today: date) -> list[Lesson]:
    """Lessons whose ``review_by`` day is before ``today``, oldest first, with module and course loaded."""
    return list(
        db.session.scalars(
            select(Lesson)
            .join(Lesson.module)
            .join(Module.course)
            .where(Lesson.review_by < today)
            .options(joinedload(Lesson.module).joinedload(Module.course))
            .order_by(Lesson.review_by, Course.slug, Module.position, Lesson.position)
        )
    )


def publish_impact(course: Course, spec: CourseSpec) -> dict:
    """What publishing changes for learners: counts and the steps added or removed."""
    live_steps = _live_steps(course) if course.version else set()
    new_steps = _steps(spec)
    in_progress = (
        db.session.scalar(
            select(func.count()).where(Enrollment.course_id == course.id, Enrollment.completed_at.is_(None))
        )
        or 0
    )
    completed = (
        db.session.scalar(
            select(func.count()).where(Enrollment.course_id == course.id, Enrollment.completed_at.is_not(None))
        )
        or 0
    )
    return {
        "in_progress": in_progress,
        "completed": completed,
        "added": sorted(new_steps - live_steps),
        "removed": sorted(live_steps - new_steps),
    }


def _live_steps(course: Course) -> set[str]:
    """_steps(course_spec(course)) in two queries: the studio's course page shows it on every visit and every
    refused edit, and building the whole spec loaded every module's skills, goals, lessons, quiz, questions and
    choices one by one (~half of a refused edit's CPU)."""
    lessons = db.session.execute(
        select(Module.title, Lesson.title).join(Lesson.module).where(Module.course_id == course.id)
    )
    quizzes = db.session.scalars(select(Module.title).join(Quiz.module).where(Module.course_id == course.id))
    return {f"{module} › {lesson}" for module, lesson in lessons} | {f"{module} › quiz" for module in quizzes}


def _steps(spec: CourseSpec) -> set[str]:
    steps = set()
    for module in spec.modules:
        steps |= {f"{module.title} › {lesson.title}" for lesson in module.lessons}
        if module.quiz:
            steps.add(f"{module.title} › quiz")
    return steps


def publish(draft: CourseDraft, actor, *, now: datetime) -> Course:
    """Apply the draft to the live course as a new version and drop the draft. Raises DomainError."""
    spec = spec_from_dict(draft.spec)
    problems = publish_problems(spec)
    if problems:
        raise DomainError(_("The course cannot be published yet: %(problems)s", problems=" ".join(problems)))
    course = draft.course
    before = course.version
    status = CourseStatus.ARCHIVED if course.status is CourseStatus.ARCHIVED else CourseStatus.PUBLISHED
    course, _created = apply_spec(spec, now=now, status=status)
    db.session.delete(draft)
    audit.record(
        actor,
        "course.published",
        "course",
        course.slug,
        f"Published “{course.title}” version {course.version}",
        now=now,
        before={"version": before},
        after={"version": course.version},
    )
    db.session.flush()
    return course


def set_status(course: Course, status: CourseStatus, actor, *, now: datetime) -> None:
    """Publish or archive a course (flush; the caller commits). Raises DomainError before the first publish, and
    when archiving a course that a published program uses (naming the programs: archive or change them first)."""
    if course.version == 0:
        raise DomainError(_("Publish the course once before archiving it."))
    if status is CourseStatus.ARCHIVED and course.status is not CourseStatus.ARCHIVED:
        using = list(
            db.session.scalars(
                select(Program.title)
                .join(ProgramCourse, ProgramCourse.program_id == Program.id)
                .where(ProgramCourse.course_id == course.id, Program.status == CourseStatus.PUBLISHED)
                .order_by(Program.title)
            )
        )
        if using:
            raise DomainError(
                gettext(
                    "“%(course)s” cannot be archived: published programs use it (%(programs)s). "
                    "Archive those programs or take the course out of them first.",
                    course=course.title,
                    programs=", ".join(f"“{title}”" for title in using),
                )
            )
    before = course.status.value
    course.status, course.updated_at = status, now
    audit.record(
        actor,
        f"course.{status.value}",
        "course",
        course.slug,
        f"“{course.title}” is now {status.value}",
        now=now,
        before={"status": before},
        after={"status": status.value},
    )
    db.session.flush()


# ---- zip bundles -----------------------------------------------------------------------------


MEDIA_REF = re.compile(r"\(/media/([0-9a-f]{64}\.(?:png|jpg|webp))\)")


def media_references(spec: CourseSpec) -> set[str]:
    return {name for module in spec.modules for lesson in module.lessons for name in MEDIA_REF.findall(lesson.body)}


def bundle_zip(spec: CourseSpec, media_store=None) -> bytes:
    """The course's files, plus the images its lessons show under media/ (read from ``media_store``), as one
    zip. An image missing from storage is left out (the import names it); raises OSError if storage fails."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = dict(spec_files(spec))
        if media_store is not None:
            for name in sorted(media_references(spec)):
                try:
                    entries[f"media/{name}"] = media_store.read(name)
                except FileNotFoundError:
                    continue
        for path, content in entries.items():
            info = zipfile.ZipInfo(f"{spec.slug}/{path}", date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def read_zip(data: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """The files of an uploaded bundle zip, checked for zip-slip, zip bombs and encodings. Raises CatalogError."""
    if len(data) > MAX_ZIP_BYTES:
        raise CatalogError([_("The zip is larger than %(size)d MB.", size=MAX_ZIP_BYTES // (1024 * 1024))])
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, ValueError, OSError):
        raise CatalogError([_("The upload is not a zip file.")]) from None
    problems = []
    if len(infos) > MAX_ZIP_FILES:
        raise CatalogError([_("The zip holds more than %(num)d files.", num=MAX_ZIP_FILES)])
    if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
        raise CatalogError(
            [_("Unzipped, the bundle would be larger than %(size)d MB.", size=MAX_UNZIPPED_BYTES // (1024 * 1024))]
        )
    names = [i.filename for i in infos]
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            problems.append(_("%(name)s: paths must stay inside the bundle.", name=name))
    if problems:
        raise CatalogError(problems)
    # a single top folder (as our exports have) is stripped
    tops = {n.split("/", 1)[0] for n in names}
    strip = len(tops) == 1 and all("/" in n for n in names)
    files: dict[str, str] = {}
    media: dict[str, bytes] = {}
    for info in infos:
        name = quoted(info.filename.split("/", 1)[1] if strip else info.filename, 120)
        if info.file_size > 1_000_000:
            problems.append(_("%(name)s: larger than 1 MB.", name=name))
            continue
        if info.flag_bits & 0x1:
            problems.append(_("%(name)s: encrypted; export the bundle again without a password.", name=name))
            continue
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.append(
                _(
                    "%(name)s: compressed with method %(method)s; only stored or deflated entries are read.",
                    name=name,
                    method=info.compress_type,
                )
            )
            continue
        try:
            with archive.open(info) as handle:
                raw = handle.read(1_000_001)
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError, RuntimeError, NotImplementedError) as error:
            # a bad CRC, a truncated or corrupt stream, a size the header under-states
            problems.append(
                _("%(name)s: the zip entry is corrupt (%(error)s).", name=name, error=quoted(str(error), 80))
            )
            continue
        if len(raw) != info.file_size:  # the header lied about the size
            problems.append(_("%(name)s: its size does not match the zip header; the zip is corrupt.", name=name))
            continue
        if name.startswith("media/"):
            media[name.removeprefix("media/")] = raw
            continue
        try:
            files[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(_("%(name)s: not UTF-8 text.", name=name))
    if "course.yaml" not in files and not problems:
        problems.append("course.yaml: missing at the top of the bundle.")
    if problems:
        raise CatalogError(problems)
    return files, media


def import_zip(data: bytes, actor, *, now: datetime, media_store, max_image_bytes: int) -> CourseDraft:
    """Validate an uploaded bundle completely, then load it as the course's draft (new course if needed).

    Images under media/ are checked by content and must be named by their sha256; every image a lesson
    shows must be in the bundle or already uploaded. Nothing is written unless all of it is valid.
    """
    from courses.media import inspect_image, store_image

    files, media = read_zip(data)

    def read(path: str) -> str:
        if path not in files:
            raise OSError("not in the zip")
        return files[path]

    spec = parse_bundle(read)
    problems = []
    for name, content in media.items():
        try:
            _image, extension, _width, _height = inspect_image(content, max_bytes=max_image_bytes)
        except DomainError as error:
            problems.append(f"media/{name}: {error.message}")
            continue
        if name != f"{hashlib.sha256(content).hexdigest()}.{extension}":
            problems.append(
                _("media/%(name)s: the name must be the image's sha256 and type, as exports write it.", name=name)
            )
    known = set(media) | set(db.session.scalars(select(MediaFile.sha256 + "." + MediaFile.extension)))
    for missing in sorted(media_references(spec) - known):
        problems.append(_("a lesson shows /media/%(name)s, which is neither in the bundle nor uploaded.", name=missing))
    if problems:
        raise CatalogError(problems)
    for name, content in media.items():
        alt = next(
            (
                m.group(1)
                for module in spec.modules
                for lesson in module.lessons
                for m in re.finditer(r"!\[([^\]]+)\]\(/media/" + re.escape(name) + r"\)", lesson.body)
            ),
            "Imported image",
        )
        store_image(content, alt_text=alt, actor=actor, store=media_store, max_bytes=max_image_bytes, now=now)
    if not SLUG.match(spec.slug):
        raise CatalogError(["course.yaml: invalid slug"])
    course = db.session.scalar(select(Course).where(Course.slug == spec.slug))
    if course is None:
        course = create_course(actor, spec, now=now)
    draft = open_draft(course, actor, now=now)
    save_draft(
        draft,
        spec,
        expected_revision=draft.revision,
        actor=actor,
        now=now,
        summary=f"Imported a bundle into the draft of “{spec.title}”",
    )
    return draft
