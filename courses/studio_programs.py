"""The studio's program pages (admins): create, edit details and courses, order courses, publish, archive.

Programs are edited in place (no draft copy): a program is a short list of existing courses, and a changed
course list bumps its version. Routes live on the studio blueprint.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from accounts.permissions import permission_required
from core.database import utcnow
from core.errors import DomainError, form_error
from core.extensions import db
from core.forms import ButtonForm
from courses import programs
from courses.forms import NewProgramForm, ProgramForm
from courses.models import Course, CourseStatus, Program
from courses.permissions import can_author_courses
from courses.studio_views import _framework_choices, bp


def _program(slug: str) -> Program:
    program = programs.get_program(slug)
    if program is None:
        abort(404)
    return program


def _choices(form: ProgramForm) -> None:
    _framework_choices(form)
    form.courses.choices = [
        SelectChoice(
            c.slug,
            c.title
            if c.status is CourseStatus.PUBLISHED
            else _("%(title)s (draft)", title=c.title)
            if c.status is CourseStatus.DRAFT
            else _("%(title)s (archived)", title=c.title),
        )
        for c in db.session.scalars(select(Course).order_by(Course.title))
    ]


def _ordered(current: list[str], chosen: list[str]) -> list[str]:
    """Keep the order of courses already in the program; newly chosen ones go at the end."""
    return [s for s in current if s in chosen] + [s for s in chosen if s not in current]


def _spec(form: ProgramForm, slug: str, current: list[str]) -> programs.ProgramSpec:
    return programs.ProgramSpec(
        slug=slug,
        title=form.title.data,
        purpose=form.purpose.data,
        audience=form.audience.data,
        normal_weeks=form.normal_weeks.data,
        occupations=list(form.occupations.data),
        courses=_ordered(current, list(form.courses.data)),
    )


@bp.get("/programs")
@permission_required(can_author_courses)
def programs_index():
    found = list(db.session.scalars(select(Program).order_by(Program.title).options(*programs.program_outline())))
    return render_template("studio/programs.html", programs=found, confirm=ButtonForm())


@bp.route("/programs/new", methods=["GET", "POST"])
@permission_required(can_author_courses)
def new_program():
    form = NewProgramForm()
    _choices(form)
    if form.validate_on_submit():
        try:
            program = programs.create_program(current_user, _spec(form, form.slug.data, []), now=utcnow())
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
        else:
            db.session.commit()
            flash(_("Draft program created. Set the course order, then publish."), "success")
            return redirect(url_for("studio.edit_program", slug=program.slug), 303)
    return render_template("studio/program_new.html", form=form), 422 if form.errors or form.form_errors else 200


@bp.route("/programs/<slug>", methods=["GET", "POST"])
@permission_required(can_author_courses)
def edit_program(slug: str):
    program = _program(slug)
    spec = programs.program_spec(program)
    form = ProgramForm(data={**vars(spec), "seen": program.content_hash})
    _choices(form)
    status = 200
    if form.validate_on_submit():
        if form.seen.data != program.content_hash:
            flash(
                _("This program changed since you opened it. Your changes were not saved: check them and save again."),
                "error",
            )
            return redirect(url_for("studio.edit_program", slug=slug), 303)
        try:
            programs.save_program(current_user, program, _spec(form, slug, spec.courses), now=utcnow())
        except DomainError as error:
            db.session.rollback()
            form_error(form, error)
            status = 422
        else:
            db.session.commit()
            flash(_("Program saved. Learners see it now.") if program.is_published else _("Program saved."), "success")
            return redirect(url_for("studio.edit_program", slug=slug), 303)
    elif form.errors:
        status = 422
    return render_template("studio/program.html", program=program, spec=spec, form=form, confirm=ButtonForm()), status


@bp.post("/programs/<slug>/courses/<int:index>/<direction>")
@permission_required(can_author_courses)
def move_program_course(slug: str, index: int, direction: str):
    program = _program(slug)
    if not ButtonForm().validate_on_submit() or direction not in {"up", "down"}:
        abort(400)
    try:
        spec = programs.move_course(program, index, -1 if direction == "up" else 1)
        programs.save_program(current_user, program, spec, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
    else:
        db.session.commit()
        flash(_("Course order saved."), "success")
    return redirect(url_for("studio.edit_program", slug=slug) + "#order-h", 303)


@bp.post("/programs/<slug>/status/<status>")
@permission_required(can_author_courses)
def program_status(slug: str, status: str):
    program = _program(slug)
    if not ButtonForm().validate_on_submit() or status not in {"published", "archived"}:
        abort(400)
    try:
        programs.set_program_status(current_user, program, CourseStatus(status), now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
    else:
        db.session.commit()
        flash(
            (_("“%(title)s” is now archived.") if status == "archived" else _("“%(title)s” is now published."))
            % {"title": program.title},
            "success",
        )
    return redirect(url_for("studio.edit_program", slug=slug), 303)


@bp.get("/programs/<slug>.yaml")
@permission_required(can_author_courses)
def export_program(slug: str):
    from flask import Response

    program = _program(slug)
    response = Response(programs.program_file(programs.program_spec(program)), mimetype="application/yaml")
    response.headers["Content-Disposition"] = f'attachment; filename="{program.slug}.yaml"'
    return response
