"""The site header, rendered once per language and role: for a signed-in person in no organization, and for visitors.

The header (brand, navigation, language switcher) was the largest part of rendering a signed-in page: some twenty
links, nine permission checks and two forms, the same on every page. For a person in no organization (most
learners) everything in it follows from the page language and the answers of the permission predicates it asks
(`can_…(current_user)`), except three values: the CSRF token of the forms, the page address the language switcher
returns to, and the person's name. So the header is rendered once per (language, those answers, script root) with a
marker in place of each of those, kept per process, and
the markers are replaced per request, escaped exactly as the template would escape them. Members of an
organization (their own links) get the template rendered as before.

A visitor's header follows from the page language alone, but for the language switcher's links, which carry the
page address (``/language/es?next=…``): it is rendered once per (language, script root) with a marker in place of
each link, and the links are built per request as the template builds them. The pages visitors open most are kept
whole in front of Flask (core/lane.py); this is for those that reach Flask (log in, sign up, error pages, forms).
"""

from __future__ import annotations

import re

from flask import current_app, g, render_template, request
from flask_login import current_user
from markupsafe import Markup

from core.skeleton import fill, mark, rendering

TEMPLATE = "_site_header.html"
_PREDICATE_RE = re.compile(r"\b(can_\w+)\(current_user\)")


def grants(user) -> tuple[bool, ...]:
    """The answers of every predicate the header asks, in a fixed order: the key is what decides the links (were it
    the role, a predicate that looked at more than the role would be served another person's links)."""
    memo = g.get("awa_grants")
    if memo is not None and memo[0] is user:  # asked by the header and by a page skeleton's key
        return memo[1]
    env = current_app.jinja_env
    names = current_app.extensions.get("site_header_predicates")
    if names is None:
        source = env.loader.get_source(env, TEMPLATE)[0]
        names = current_app.extensions["site_header_predicates"] = tuple(sorted(set(_PREDICATE_RE.findall(source))))
    helpers: dict = {}
    if any(name not in env.globals for name in names):  # some come from context processors (orgs: memberships)
        current_app.update_template_context(helpers)
    answers = tuple(bool((env.globals.get(name) or helpers[name])(user)) for name in names)
    g.awa_grants = (user, answers)
    return answers


def cached_site_header() -> Markup | None:
    """The header for this request from the per-process copy, or None when it must be rendered in full."""
    from core.i18n import current_language

    user = current_user._get_current_object()
    if not getattr(user, "is_authenticated", False):
        return None if rendering() else _visitor_header()
    if getattr(user, "has_memberships", None) is not False:
        return None
    key = (current_language(), grants(user), request.script_root)
    store = current_app.extensions.setdefault("site_headers", {})  # languages × grant sets × script roots: a handful
    html = store.get(key)
    if html is None:
        html = Markup(  # noqa: S704  (rendered by the autoescaping template)
            render_template(TEMPLATE, header_csrf=mark("csrf"), header_next=mark("next"), header_name=mark("name"))
        )
        store[key] = html
    # inside a page skeleton the markers stay, for the page's own single pass (core/skeleton.py)
    return html if rendering() else fill(html, {})


def _link_mark(index: int) -> str:
    return "lang_url_" + "abcdefghijklmnopqrstuvwxyz"[index % 26] * (index // 26 + 1)


def _visitor_header() -> Markup:
    """A visitor's header from the per-process copy for (language, script root), its links filled in."""
    from core.i18n import current_language, language_choices

    choices = language_choices()
    key = ("visitor", current_language(), request.script_root, len(choices))
    store = current_app.extensions.setdefault("site_headers", {})
    html = store.get(key)
    if html is None:
        marked = [dict(choice, url=mark(_link_mark(index))) for index, choice in enumerate(choices)]
        html = Markup(render_template(TEMPLATE, language_choices=lambda: marked))  # noqa: S704  (autoescaped)
        store[key] = html
    return fill(html, {_link_mark(index): choice["url"] for index, choice in enumerate(choices)})
