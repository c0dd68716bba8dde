"""Server-rendered SVG charts (pygal) for the dashboard. Served as images, so no script ever runs in the page;
each chart sits beside the table holding the same numbers."""

from __future__ import annotations

import sys

import pygal
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pygal.style import Style

# pygal puts an import hook on sys.meta_path for its optional map plugins (pygal.maps.*, unused here). The hook
# has no find_spec(), which breaks later imports in this process on Python 3.11+ (for example Pillow loading
# its image plugins when a lesson image is checked). We do not use the maps, so the hook comes out again.
sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__name__ != "PluginImportFixer"]

STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1b1f24",
    foreground_strong="#1b1f24",
    foreground_subtle="#4a5560",
    colors=("#0b4f8a", "#0f6b2f", "#7a4b00"),
    font_family="sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    title_font_size=16,
)

CHARTS = {
    "course": (
        _l("Enrollments and completions by course"),
        "name",
        [
            (_l("Enrolled"), "enrolled"),
            (_l("Completed"), "completed"),
            (_l("Certificates issued"), "certificates_issued"),
        ],
    ),
    "attainment-course": (
        _l("Credential attainment by course"),
        "name",
        [
            (_l("Participants"), "participants"),
            (_l("Completed"), "completed"),
            (_l("Earned a credential"), "credentialed"),
        ],
    ),
}


def chart_svg(kind: str, rows: list[dict]) -> str:
    title, label_key, series = CHARTS[kind]
    chart = pygal.HorizontalBar(
        js=[],
        style=STYLE,
        title=str(title),
        width=900,
        height=max(320, 90 + 60 * len(rows)),
        disable_xml_declaration=True,
        truncate_label=48,
        truncate_legend=40,
        print_values=False,
        legend_at_bottom=True,
    )
    chart.x_labels = [row[label_key] for row in rows] or [_("(no data)")]
    for name, key in series:
        chart.add(str(name), [row[key] for row in rows] or [0])
    # the axis counts people: whole numbers only (pygal would tick 0.5, 1, 1.5 for small counts)
    chart.y_labels = whole_ticks(max((row[key] for row in rows for _name, key in series), default=0))
    chart.value_formatter = lambda value: format_decimal(value, "#,##0")
    return chart.render(is_unicode=True)


WORKFORCE_CHARTS = {
    "outcomes": (
        _l("Participants, exits and credentials by program"),
        [
            (_l("Participants served"), "participants_served"),
            (_l("Exited: completed"), "exited_completed"),
            (_l("Exited: 90 days inactive"), "exited_inactive"),
            (_l("Credentials attained"), "credentials_attained"),
        ],
    ),
    "hours": (
        _l("Hours of instruction by course: stated and measured"),
        [(_l("Stated hours"), "stated_hours"), (_l("Measured active hours"), "measured_hours")],
    ),
}


def workforce_chart_svg(kind: str, rows: list) -> str:
    """A bar chart of workforce-report rows (``insights.workforce.Row``); the same numbers are in the page's table."""
    title, series = WORKFORCE_CHARTS[kind]
    chart = pygal.HorizontalBar(
        js=[],
        style=STYLE,
        title=str(title),
        width=900,
        height=max(320, 90 + 60 * len(rows)),
        disable_xml_declaration=True,
        truncate_label=48,
        truncate_legend=40,
        print_values=False,
        legend_at_bottom=True,
    )
    chart.x_labels = [row.name for row in rows] or [_("(no data)")]
    for name, attribute in series:
        chart.add(str(name), [getattr(row, attribute) for row in rows] or [0])
    return chart.render(is_unicode=True)


def whole_ticks(top: int, most: int = 8) -> list[int]:
    """Axis ticks from 0 past ``top`` at a round whole step (1, 2, 5, 10, 20, 50, ...), at most ``most`` steps."""
    top = max(int(top), 1)
    step = next(m * 10**e for e in range(12) for m in (1, 2, 5) if top / (m * 10**e) <= most)
    last = -(-top // step) * step
    return list(range(0, last + 1, step))
