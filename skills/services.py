"""Loading the skills framework file. Flush only; callers commit."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select

from core.errors import DomainError
from core.extensions import db
from core.yamlload import YamlError, line_of, load
from skills.models import OCCUPATION_GROUPS, Occupation, PlanGoal, Skill

FRAMEWORK_FILE = Path(__file__).with_name("framework.yaml")
GOAL_ID = re.compile(r"^[GR]\d{1,2}$")
SKILL_ID = re.compile(r"^[A-Z]{3}-\d{2}$")
ONET_CODE = re.compile(r"^\d{2}-\d{4}\.\d{2}$")
LEVELS = {"foundational", "intermediate", "advanced"}
PILLARS = {"I", "II", "III"}


class FrameworkError(DomainError):
    """The framework file is invalid; ``problems`` lists every problem with its line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The skills framework file has problems:\n" + "\n".join(problems))
        self.problems = problems


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.retired or self.deleted)

    def summary(self) -> str:
        if not self.changed:
            return "Skills framework is up to date; nothing changed."
        parts = [f"{len(v)} {k}" for k, v in vars(self).items() if v]
        return "Skills framework loaded: " + ", ".join(parts) + "."


def _text(item: dict, key: str, problems: list[str], where: str, *, max_len: int = 200) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: '{key}' is required and must be text")
        return ""
    if len(value) > max_len:
        problems.append(f"{where}: '{key}' is longer than {max_len} characters")
    return value.strip()


def _list(item: dict, key: str, problems: list[str], where: str) -> list:
    value = item.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{where}: '{key}' must be a list")
        return []
    return value


def parse_framework(text: str, *, source: str = "framework.yaml") -> dict[str, list[dict[str, Any]]]:
    """Validate the whole file; raise FrameworkError listing every problem (file and line)."""
    try:
        data = load(text, source=source)
    except YamlError as error:
        raise FrameworkError([str(error)]) from None
    if not isinstance(data, dict):
        raise FrameworkError([f"{source}, line 1: the file must be a mapping with goals, skills and occupations"])
    problems: list[str] = []
    goals, skills, occupations = [], [], []
    seen: dict[str, int] = {}

    def where(item: Any, what: str) -> str:
        return f"{source}, line {line_of(item)} ({what})"

    def unique(key: str, item: Any, what: str) -> None:
        if key in seen:
            problems.append(f"{where(item, what)}: duplicate id '{key}' (first defined on line {seen[key]})")
        else:
            seen[key] = line_of(item)

    for item in _list(data, "goals", problems, f"{source}, line {line_of(data)}"):
        if not isinstance(item, dict):
            problems.append(f"{source}, line {line_of(data.get('goals'))}: each goal must be a mapping")
            continue
        gid = str(item.get("id", ""))
        w = where(item, f"goal {gid or '?'}")
        if not GOAL_ID.match(gid):
            problems.append(f"{w}: goal id must look like G1 or R12")
        unique(gid, item, f"goal {gid}")
        kind = item.get("kind")
        if kind not in {"workforce", "related"}:
            problems.append(f"{w}: kind must be 'workforce' or 'related'")
        if str(item.get("pillar")) not in PILLARS:
            problems.append(f"{w}: pillar must be I, II or III")
        goals.append(
            {
                "id": gid,
                "kind": kind,
                "title": _text(item, "title", problems, w),
                "section": _text(item, "section", problems, w),
                "pillar": str(item.get("pillar")),
                "pages": _text(item, "pages", problems, w, max_len=16),
                "summary": _text(item, "summary", problems, w, max_len=2000),
                "line": line_of(item),
            }
        )
    goal_ids = {g["id"] for g in goals}

    for item in _list(data, "occupations", problems, f"{source}, line {line_of(data)}"):
        if not isinstance(item, dict):
            problems.append(f"{source}, line {line_of(data.get('occupations'))}: each occupation must be a mapping")
            continue
        code = str(item.get("code", ""))
        w = where(item, f"occupation {code or '?'}")
        if not ONET_CODE.match(code):
            problems.append(f"{w}: '{code}' is not an O*NET-SOC code like 47-2111.00")
        unique(code, item, f"occupation {code}")
        if item.get("group") not in OCCUPATION_GROUPS:
            problems.append(f"{w}: group must be one of {', '.join(OCCUPATION_GROUPS)}")
        occupations.append({"code": code, "title": _text(item, "title", problems, w), "group": item.get("group")})
    codes = {o["code"] for o in occupations}

    for item in _list(data, "skills", problems, f"{source}, line {line_of(data)}"):
        if not isinstance(item, dict):
            problems.append(f"{source}, line {line_of(data.get('skills'))}: each skill must be a mapping")
            continue
        sid = str(item.get("id", ""))
        w = where(item, f"skill {sid or '?'}")
        if not SKILL_ID.match(sid):
            problems.append(f"{w}: skill id must look like AIL-01")
        unique(sid, item, f"skill {sid}")
        if item.get("level") not in LEVELS:
            problems.append(f"{w}: level must be one of {', '.join(sorted(LEVELS))}")
        skill_goal_ids = [str(g) for g in _list(item, "goals", problems, w)]
        goals_at = where(item.get("goals") or item, f"skill {sid}")
        for gid in skill_goal_ids:
            if gid not in goal_ids:
                problems.append(f"{goals_at}: unknown goal id '{gid}'")
        skill_codes = [str(c) for c in _list(item, "occupations", problems, w)]
        codes_at = where(item.get("occupations") or item, f"skill {sid}")
        for code in skill_codes:
            if not ONET_CODE.match(code):
                problems.append(f"{codes_at}: '{code}' is not an O*NET-SOC code like 47-2111.00")
            elif code not in codes:
                problems.append(f"{codes_at}: occupation '{code}' is not listed under occupations")
        frameworks = []
        for fw in _list(item, "frameworks", problems, w):
            if not isinstance(fw, dict) or not all(isinstance(fw.get(k), str) for k in ("framework", "code", "name")):
                problems.append(f"{where(fw, f'skill {sid}')}: each framework needs framework, code and name")
                continue
            frameworks.append({"framework": fw["framework"], "code": fw["code"], "name": fw["name"]})
        skills.append(
            {
                "id": sid,
                "name": _text(item, "name", problems, w),
                "category": _text(item, "category", problems, w, max_len=64),
                "level": item.get("level"),
                "description": _text(item, "description", problems, w, max_len=2000),
                "goals": list(dict.fromkeys(skill_goal_ids)),
                "occupations": list(dict.fromkeys(skill_codes)),
                "frameworks": frameworks,
            }
        )
    if not goals or not skills:
        problems.append(f"{source}: the file must define at least one goal and one skill")
    if problems:
        raise FrameworkError(problems)
    return {"goals": goals, "skills": skills, "occupations": occupations}


def _referenced(column, key: str, own_tables: set[str]) -> bool:
    """Is ``key`` referenced by any row outside the framework's own link tables?"""
    for table in db.metadata.sorted_tables:
        if table.name in own_tables:
            continue
        for fk in table.foreign_keys:
            if fk.column is column and db.session.scalar(select(exists().where(fk.parent == key))):
                return True
    return False


def _sync(model, key_attr: str, rows: list[dict], fields: list[str], report: LoadReport, now: datetime, label: str):
    existing = {getattr(obj, key_attr): obj for obj in db.session.scalars(select(model))}
    result = {}
    for position, row in enumerate(rows):
        key = row[key_attr]
        obj = existing.pop(key, None)
        values = {f: row[f] for f in fields} | {"position": position, "retired_at": None}
        if obj is None:
            obj = model(**{key_attr: key}, **values)
            db.session.add(obj)
            report.created.append(f"{label} {key}")
        else:
            changed = [f for f, v in values.items() if getattr(obj, f) != v]
            for f in changed:
                setattr(obj, f, values[f])
            if changed:
                report.updated.append(f"{label} {key}")
        result[key] = obj
    column = model.__table__.c[key_attr]
    for key, obj in existing.items():
        if _referenced(column, key, {"skill_goals", "skill_occupations"}):
            if obj.retired_at is None:
                obj.retired_at = now
                report.retired.append(f"{label} {key}")
        else:
            db.session.delete(obj)
            report.deleted.append(f"{label} {key}")
    return result


def load_framework(text: str, *, now: datetime, source: str = "framework.yaml") -> LoadReport:
    """Load the framework idempotently: update in place, retire what is referenced, delete the rest.

    Raises FrameworkError (nothing written) when the file is invalid. Caller commits.
    """
    data = parse_framework(text, source=source)
    report = LoadReport()
    goals = _sync(
        PlanGoal, "id", data["goals"], ["kind", "title", "section", "pillar", "pages", "summary"], report, now, "goal"
    )
    occupations = _sync(Occupation, "code", data["occupations"], ["title", "group"], report, now, "occupation")
    skills = _sync(
        Skill, "id", data["skills"], ["name", "category", "level", "description", "frameworks"], report, now, "skill"
    )
    db.session.flush()
    for row in data["skills"]:
        skill = skills[row["id"]]
        if {g.id for g in skill.goals} != set(row["goals"]) or {o.code for o in skill.occupations} != set(
            row["occupations"]
        ):
            skill.goals = [goals[g] for g in row["goals"]]
            skill.occupations = [occupations[c] for c in row["occupations"]]
            if f"skill {skill.id}" not in report.created + report.updated:
                report.updated.append(f"skill {skill.id}")
    db.session.flush()
    return report


def load_framework_file(path: Path | None = None, *, now: datetime) -> LoadReport:
    path = path or FRAMEWORK_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FrameworkError([f"{path}: cannot read the file ({error})"]) from None
    return load_framework(text, now=now, source=path.name)
