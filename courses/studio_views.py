"""The authoring studio (admins): drafts, editing, preview, publishing, zip bundles. Thin views."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from accounts.permissions import permission_required
from core.database import utcnow
from core.errors import DomainError, form_error
from core.extensions import db
from core.forms import ButtonForm
from courses import spec as specs
from courses import studio
from courses.catalog import CatalogError
from courses.forms import (
    BundleUploadForm,
    CourseMetaForm,
    ImageUploadForm,
    LessonForm,
    ModuleForm,
    NewCourseForm,
    QuizForm,
    RevisionForm,
    TagsForm,
)
from courses.markdown import render
from courses.media import media_storage, store_image
from courses.models import Course, CourseStatus, MediaFile
from courses.permissions import can_author_courses
from courses.spec import CourseSpec
from skills.models import Occupation, PlanGoal, Skill

bp = Blueprint("studio", __name__, url_prefix="/studio")


def _course(slug: str) -> Course:
    course = db.session.scalar(select(Course).where(Course.slug == slug))
    if course is None:
        abort(404)
    return course


def _draft(slug: str):
    """(course, draft, spec) for a studio page.

    A GET writes nothing: with no draft yet it shows the live course, and ``draft`` stands for the one the first
    save will create. A POST opens the draft (flushed, committed with the edit by ``_save``).
    """
    course = _course(slug)
    if request.method == "GET":
        draft, spec = studio.editing(course)
        return course, draft or studio.NO_DRAFT, spec
    draft = studio.open_draft(course, current_user, now=utcnow())
    return course, draft, studio.spec_from_dict(draft.spec)


def _framework_choices(form) -> None:
    live = lambda model: model.retired_at.is_(None)  # noqa: E731
    if hasattr(form, "skills"):
        form.skills.choices = [
            SelectChoice(s.id, f"{s.name} ({s.id})")
            for s in db.session.scalars(select(Skill).where(live(Skill)).order_by(Skill.position))
        ]
    if hasattr(form, "goals"):
        form.goals.choices = [
            SelectChoice(g.id, f"{g.id}: {g.title}")
            for g in db.session.scalars(select(PlanGoal).where(live(PlanGoal)).order_by(PlanGoal.position))
        ]
    if hasattr(form, "occupations"):
        form.occupations.choices = [
            SelectChoice(o.code, f"{o.title} ({o.code})")
            for o in db.session.scalars(select(Occupation).where(live(Occupation)).order_by(Occupation.title))
        ]


KEPT = _l(
    "Your changes are still below, as you typed them. Saving again replaces the other version with yours;"
    " to keep theirs, open the page again in a new tab and copy what you need."
)


def _save(slug, draft, spec, form, summary: str, target: str | None = None, refused=None):
    """Save an edited spec; a concurrent edit is refused with a clear message (409).

    ``refused``: a function that renders the page again; with it, a refusal keeps every field as typed (and the
    form's revision moves to the current one, so a second save is a deliberate overwrite). Without it, a refusal
    redirects with the message (for one-click actions that have nothing typed to lose).
    """
    try:
        studio.save_draft(
            draft, spec, expected_revision=int(form.revision.data), actor=current_user, now=utcnow(), summary=summary
        )
    except DomainError as error:
        db.session.rollback()
        if refused is not None:
            # the draft may be one this request created, gone with the rollback: ask the database
            current = studio.get_draft(_course(slug))
            form.revision.data = current.revision if current else studio.NO_DRAFT.revision
            form.form_errors.append(f"{error.message} {KEPT}")
            return refused(409)
        flash(error.message, "error")
        return redirect(target or url_for("studio.edit", slug=slug)), 303
    db.session.commit()
    flash(_("Saved to the draft. Learners see it once you publish."), "success")
    return redirect(target or url_for("studio.edit", slug=slug)), 303


def _item(items: list, index: int):
    if not 0 <= index < len(items):
        abort(404)
    return items[index]


@bp.get("/")
@permission_required(can_author_courses)
def index():
    courses = list(db.session.scalars(select(Course).order_by(Course.title)))
    drafts = {d.course_id for d in db.session.scalars(select(studio.CourseDraft))}
    return render_template(
        "studio/index.html",
        courses=courses,
        drafts=drafts,
        upload=BundleUploadForm(),
        stale=studio.stale_lessons(today=utcnow().date()),
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required(can_author_courses)
def new():
    form = NewCourseForm()
    if form.validate_on_submit():
        try:
            course = studio.create_course(current_user, CourseSpec(slug=form.slug.data, **form.details()), now=utcnow())
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            db.session.commit()
            flash(_("Draft created. Add skills, modules, lessons and quizzes, then publish."), "success")
            return redirect(url_for("studio.edit", slug=course.slug), 303)
    return render_template("studio/new.html", form=form), 422 if form.errors or form.form_errors else 200


@bp.get("/<slug>")
@permission_required(can_author_courses)
def edit(slug: str):
    course, draft, spec = _draft(slug)
    return _edit_page(course, draft, spec)


def _edit_page(course, draft, spec, *, meta=None, tags=None, module_form=None, status: int = 200):
    """The course page of the studio; a form given here (as posted) is shown instead of a fresh one."""
    meta = meta or CourseMetaForm(prefix="meta", data={**vars(spec), "revision": draft.revision})
    tags = tags or TagsForm(
        prefix="tags",
        data={"skills": spec.skills, "goals": spec.goals, "occupations": spec.occupations, "revision": draft.revision},
    )
    _framework_choices(tags)
    module_form = module_form or ModuleForm(prefix="module", data={"revision": draft.revision})
    _framework_choices(module_form)
    return render_template(
        "studio/course.html",
        course=course,
        draft=draft,
        spec=spec,
        meta=meta,
        tags=tags,
        module_form=module_form,
        problems=studio.publish_problems(spec),
        warnings=studio.publish_warnings(spec),
        impact=studio.publish_impact(course, spec),
    ), status


@bp.post("/<slug>/meta")
@permission_required(can_author_courses)
def save_meta(slug: str):
    course, draft, spec = _draft(slug)
    # a detail the post leaves out (a page opened before that detail existed) keeps the draft's value
    form = CourseMetaForm(prefix="meta", data=specs.details(spec))
    if not form.validate_on_submit():
        return _edit_page(course, draft, spec, meta=form, status=422)  # every field comes back as typed
    edited = specs.set_details(spec, **form.details())
    return _save(
        slug,
        draft,
        edited,
        form,
        f"Edited the details of “{edited.title}”",
        refused=lambda status: _edit_page(course, draft, spec, meta=form, status=status),
    )


@bp.post("/<slug>/tags")
@permission_required(can_author_courses)
def save_tags(slug: str):
    course, draft, spec = _draft(slug)
    form = TagsForm(prefix="tags")
    _framework_choices(form)
    if not form.validate_on_submit():
        form.form_errors.append("Choose skills, goals and occupations from the lists.")
        return _edit_page(course, draft, spec, tags=form, status=422)
    edited = specs.set_tags(spec, skills=form.skills.data, goals=form.goals.data, occupations=form.occupations.data)
    return _save(
        slug,
        draft,
        edited,
        form,
        f"Changed the skills and goals of “{spec.title}”",
        refused=lambda status: _edit_page(course, draft, spec, tags=form, status=status),
    )


@bp.post("/<slug>/modules")
@permission_required(can_author_courses)
def add_module(slug: str):
    course, draft, spec = _draft(slug)
    form = ModuleForm(prefix="module")
    _framework_choices(form)
    if not form.validate_on_submit():
        return _edit_page(course, draft, spec, module_form=form, status=422)
    edited = specs.add_module(
        spec, title=form.title.data, summary=form.summary.data or "", skills=form.skills.data, goals=form.goals.data
    )
    return _save(
        slug,
        draft,
        edited,
        form,
        f"Added module “{form.title.data}”",
        refused=lambda status: _edit_page(course, draft, spec, module_form=form, status=status),
    )


@bp.route("/<slug>/modules/<int:m>", methods=["GET", "POST"])
@permission_required(can_author_courses)
def module(slug: str, m: int):
    course, draft, spec = _draft(slug)
    item = _item(spec.modules, m)
    form = ModuleForm(
        data={
            "title": item.title,
            "summary": item.summary,
            "skills": item.skills,
            "goals": item.goals,
            "revision": draft.revision,
        }
    )
    _framework_choices(form)
    if form.validate_on_submit():
        edited = specs.edit_module(
            spec,
            m,
            title=form.title.data,
            summary=form.summary.data or "",
            skills=form.skills.data,
            goals=form.goals.data,
        )
        return _save(
            slug,
            draft,
            edited,
            form,
            f"Edited module “{form.title.data}”",
            refused=lambda status: (
                render_template("studio/module.html", course=course, spec=spec, m=m, item=item, form=form),
                status,
            ),
        )
    return render_template(
        "studio/module.html", course=course, spec=spec, m=m, item=item, form=form
    ), 422 if form.errors else 200


@bp.post("/<slug>/modules/<int:m>/<action>")
@permission_required(can_author_courses)
def module_action(slug: str, m: int, action: str):
    _live, draft, spec = _draft(slug)
    form = RevisionForm()
    item = _item(spec.modules, m)
    if not form.validate_on_submit() or action not in {"up", "down", "delete"}:
        abort(400)
    try:
        edited = specs.module_action(spec, m, action)
    except DomainError as error:
        flash(error.message, "error")
        return redirect(url_for("studio.edit", slug=slug)), 303
    verb = "Removed" if action == "delete" else f"Moved {action}"
    return _save(slug, draft, edited, form, f"{verb} module “{item.title}”")


@bp.route("/<slug>/modules/<int:m>/lessons/new", methods=["GET", "POST"], defaults={"n": None})
@bp.route("/<slug>/modules/<int:m>/lessons/<int:n>", methods=["GET", "POST"])
@permission_required(can_author_courses)
def lesson(slug: str, m: int, n: int | None):
    course, draft, spec = _draft(slug)
    module_spec = _item(spec.modules, m)
    existing = None if n is None else _item(module_spec.lessons, n)
    form = LessonForm(
        data={
            "title": existing.title,
            "minutes": existing.minutes,
            "body": existing.body,
            "review_by": date.fromisoformat(existing.review_by) if existing.review_by else None,
            "revision": draft.revision,
        }
        if existing
        else {"minutes": 10, "revision": draft.revision}
    )
    # the image upload is part of the lesson's own form, so uploading sends (and gives back) what was typed
    upload = ImageUploadForm(prefix="image")
    preview = None

    def page(status: int = 200):
        return render_template(
            "studio/lesson.html",
            upload=upload,
            images=recent_images(),
            course=course,
            spec=spec,
            module=module_spec,
            m=m,
            n=n,
            form=form,
            preview=preview,
        ), status

    if request.method == "POST" and upload.submit.data:
        return page(_upload_into(form, upload))
    if form.validate_on_submit():
        if form.preview.data:
            # exactly what learners will see, sanitized the same way
            preview = render(specs.lesson_body(form.body.data))
        else:
            edited = specs.save_lesson(
                spec,
                m,
                n,
                title=form.title.data,
                minutes=form.minutes.data,
                body=form.body.data,
                review_by=form.review_by.data.isoformat() if form.review_by.data else None,
            )
            return _save(
                slug,
                draft,
                edited,
                form,
                f"Saved lesson “{form.title.data}” in “{module_spec.title}”",
                refused=page,
            )
    return page(422 if form.errors else 200)


def _upload_into(form: LessonForm, upload: ImageUploadForm) -> int:
    """Store an image sent with the lesson form and add its Markdown to the end of the (unsaved) lesson text.

    Every lesson field is left as posted. Returns the page's status: 201, or 422 with the reason on the upload's
    fields. Commits the image (it is useful whether or not the lesson is saved).
    """
    if not upload.validate_on_submit():
        return 422
    cfg = current_app.config
    try:
        media = store_image(
            upload.file.data.read(cfg["MAX_IMAGE_BYTES"] + 1),
            alt_text=upload.alt_text.data,
            actor=current_user,
            store=media_storage(),
            max_bytes=cfg["MAX_IMAGE_BYTES"],
            now=utcnow(),
        )
    except DomainError as error:
        db.session.rollback()
        form_error(upload, error)
        return 422
    db.session.commit()
    markdown = f"![{media.alt_text}](/media/{media.filename})"
    form.body.data = (form.body.data or "").rstrip() + "\n\n" + markdown + "\n"
    upload.uploaded = markdown
    upload.alt_text.data = ""
    return 201


@bp.post("/<slug>/modules/<int:m>/lessons/<int:n>/<action>")
@permission_required(can_author_courses)
def lesson_action(slug: str, m: int, n: int, action: str):
    _live, draft, spec = _draft(slug)
    module_spec = _item(spec.modules, m)
    item = _item(module_spec.lessons, n)
    form = RevisionForm()
    if not form.validate_on_submit() or action not in {"up", "down", "delete"}:
        abort(400)
    try:
        edited = specs.lesson_action(spec, m, n, action)
    except DomainError as error:
        flash(error.message, "error")
        return redirect(url_for("studio.edit", slug=slug)), 303
    return _save(slug, draft, edited, form, f"{'Removed' if action == 'delete' else 'Moved'} lesson “{item.title}”")


def recent_images(limit: int = 12):
    return list(db.session.scalars(select(MediaFile).order_by(MediaFile.created_at.desc()).limit(limit)))


@bp.post("/media")
@permission_required(can_author_courses)
def upload_image():
    from accounts.redirects import safe_next

    form = ImageUploadForm()
    back = safe_next(form.next.data) or url_for("studio.index")
    if not form.validate_on_submit():
        flash(" ".join(str(e) for errors in form.errors.values() for e in errors) or _("Choose an image."), "error")
        return redirect(back), 303
    cfg = current_app.config
    try:
        media = store_image(
            form.file.data.read(cfg["MAX_IMAGE_BYTES"] + 1),
            alt_text=form.alt_text.data,
            actor=current_user,
            store=media_storage(),
            max_bytes=cfg["MAX_IMAGE_BYTES"],
            now=utcnow(),
        )
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(back), 303
    db.session.commit()
    markdown = f"![{media.alt_text}](/media/{media.filename})"
    flash(_("Image uploaded. Put it in a lesson with: %(markdown)s", markdown=markdown), "success")
    return redirect(back), 303


@bp.route("/<slug>/modules/<int:m>/quiz", methods=["GET", "POST"])
@permission_required(can_author_courses)
def quiz(slug: str, m: int):
    course, draft, spec = _draft(slug)
    module_spec = _item(spec.modules, m)
    current = module_spec.quiz
    form = QuizForm(
        data={
            "title": current.title,
            "pass_mark": current.pass_mark,
            "max_attempts": current.max_attempts,
            "cooldown_minutes": current.cooldown_minutes,
            "failure_cooldown_minutes": current.failure_cooldown_minutes,
            "questions": studio.questions_text(current.questions),
            "revision": draft.revision,
        }
        if current
        else {
            "title": f"Check your understanding: {module_spec.title}",
            "pass_mark": 70,
            "cooldown_minutes": 0,
            "failure_cooldown_minutes": 30,
            "revision": draft.revision,
        }
    )

    def quiz_page():
        return render_template(
            "studio/quiz.html", course=course, spec=spec, module=module_spec, m=m, form=form, help=studio.QUESTIONS_HELP
        )

    if form.validate_on_submit():
        try:
            questions = studio.parse_questions(form.questions.data)
        except DomainError as error:
            form_error(form, error)
        else:
            edited = specs.set_quiz(
                spec,
                m,
                title=form.title.data,
                pass_mark=form.pass_mark.data,
                max_attempts=form.max_attempts.data,
                cooldown_minutes=form.cooldown_minutes.data or 0,
                failure_cooldown_minutes=form.failure_cooldown_minutes.data or 0,
                questions=questions,
            )
            return _save(
                slug,
                draft,
                edited,
                form,
                f"Saved the quiz of “{module_spec.title}”",
                refused=lambda status: (quiz_page(), status),
            )
    return quiz_page(), 422 if form.errors or form.form_errors else 200


@bp.get("/<slug>/preview", defaults={"m": 0, "n": 0})
@bp.get("/<slug>/preview/<int:m>/<int:n>")
@permission_required(can_author_courses)
def preview(slug: str, m: int, n: int):
    course, _draft_row, spec = _draft(slug)
    module_spec = spec.modules[m] if 0 <= m < len(spec.modules) else None
    lesson_spec = module_spec.lessons[n] if module_spec and 0 <= n < len(module_spec.lessons) else None
    return render_template(
        "studio/preview.html",
        course=course,
        spec=spec,
        m=m,
        n=n,
        module=module_spec,
        lesson=lesson_spec,
        body=render(lesson_spec.body) if lesson_spec else None,
    )


@bp.post("/<slug>/publish")
@permission_required(can_author_courses)
def publish(slug: str):
    course, draft, spec = _draft(slug)
    form = RevisionForm()
    if not form.validate_on_submit():
        abort(400)
    if int(form.revision.data) != draft.revision:
        flash(studio.StaleDraft().message, "error")
        return redirect(url_for("studio.edit", slug=slug)), 303
    try:
        course = studio.publish(draft, current_user, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("studio.edit", slug=slug)), 303
    db.session.commit()
    flash(_("Published version %(version)d. Learners see it now.", version=course.version), "success")
    for warning in studio.publish_warnings(spec):
        flash(_("Still to improve in “%(title)s”: %(warning)s", title=course.title, warning=warning), "warning")
    return redirect(url_for("studio.index"), 303)


@bp.post("/<slug>/status/<status>")
@permission_required(can_author_courses)
def set_status(slug: str, status: str):
    course = _course(slug)
    if not ButtonForm().validate_on_submit() or status not in {"archived", "published"}:
        abort(400)
    try:
        studio.set_status(course, CourseStatus(status), current_user, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return index(), 409  # refused: the list again, with the reason, and nothing written
    else:
        db.session.commit()
        flash(
            (_("“%(title)s” is now archived.") if status == "archived" else _("“%(title)s” is now published."))
            % {"title": course.title},
            "success",
        )
    return redirect(url_for("studio.index"), 303)


@bp.post("/<slug>/discard")
@permission_required(can_author_courses)
def discard(slug: str):
    _live, draft, _spec = _draft(slug)
    if not RevisionForm().validate_on_submit():
        abort(400)
    try:
        studio.discard_draft(draft, current_user, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("studio.edit", slug=slug)), 303
    db.session.commit()
    flash(_("Draft discarded; the published course is unchanged."), "success")
    return redirect(url_for("studio.index"), 303)


@bp.get("/<slug>/bundle.zip")
@permission_required(can_author_courses)
def export_zip(slug: str):
    course = _course(slug)
    draft = studio.get_draft(course)
    from courses.catalog import course_spec

    spec = studio.spec_from_dict(draft.spec) if draft else course_spec(course)
    response = Response(studio.bundle_zip(spec, media_storage()), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{course.slug}.zip"'
    return response


@bp.post("/import")
@permission_required(can_author_courses)
def import_zip():
    form = BundleUploadForm()
    if not form.validate_on_submit():
        flash(_("Choose a zip file to import."), "error")
        return redirect(url_for("studio.index"), 303)
    try:
        draft = studio.import_zip(
            form.file.data.read(studio.MAX_ZIP_BYTES + 1),
            current_user,
            now=utcnow(),
            media_store=media_storage(),
            max_image_bytes=current_app.config["MAX_IMAGE_BYTES"],
        )
    except CatalogError as error:
        db.session.rollback()
        courses = list(db.session.scalars(select(Course).order_by(Course.title)))
        return render_template(
            "studio/index.html", courses=courses, drafts=set(), upload=form, import_problems=error.problems
        ), 422
    db.session.commit()
    flash(_("Bundle checked and loaded into a draft. Review it, then publish."), "success")
    return redirect(url_for("studio.edit", slug=draft.course.slug), 303)


from courses import studio_programs  # noqa: E402,F401  (the program pages, on this blueprint)
