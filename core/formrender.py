"""WTForms' attribute builder, made cheap: the same markup, without ``Markup.format`` per attribute.

Every form field a template renders goes through ``wtforms.widgets.html_params`` (each input, select option,
textarea and label). WTForms builds each ``name="value"`` pair with ``Markup('{k}="{v}"').format(...)``, which
runs ``string.Formatter`` and an escaping formatter per attribute: ~0.25 ms for one seven-attribute input here,
the largest single cost of a page with forms (a re-rendered form after a failed POST, the account page, the login
page). ``html_params`` below returns the same ``Markup``, character for character: keys cleaned as WTForms cleans
them (a trailing ``_`` dropped, ``data_``/``aria_`` underscores to hyphens), sorted by the key as passed, ``True``
as a bare attribute, ``False`` left out, every key and value escaped by MarkupSafe and a double quote inside an
already-safe value written as ``&quot;`` (tests/test_formrender.py compares it with WTForms' own on random input).
"""

from __future__ import annotations

from markupsafe import Markup, escape
from wtforms import widgets
from wtforms.widgets import core as widgets_core

ORIGINAL = widgets_core.html_params


def html_params(**kwargs) -> Markup:
    """``wtforms.widgets.html_params``: the HTML attributes for ``kwargs`` (see the module docstring)."""
    parts = []
    for key, value in sorted(kwargs.items()):
        key = key.rstrip("_")
        if key.startswith(("data_", "aria_")):
            key = key.replace("_", "-")
        if value is True:
            parts.append(str(escape(key)))
        elif value is not False:
            # str.replace, not Markup.replace (which would escape the replacement's "&")
            parts.append(f'{escape(key)}="{str.replace(escape(value), chr(34), "&quot;")}"')
    return Markup(" ".join(parts))  # noqa: S704  (every part escaped above)


def install() -> None:
    """Put ``html_params`` where WTForms' widgets and labels look it up (idempotent; process-wide, like WTForms)."""
    widgets_core.html_params = html_params  # ListWidget, Select, Option, TextArea, TableWidget, DataList
    widgets.html_params = html_params  # Label (wtforms.fields.core calls widgets.html_params)
    for widget in (widgets_core.Input, widgets_core.Button):
        widget.html_params = staticmethod(html_params)
