"""The site header of a signed-in person in no organization, rendered once per language and role.

The header (brand, navigation, language switcher) was the largest part of rendering a signed-in page: some twenty
links, nine permission checks and two forms, the same on every page. For a person in no organization (most
learners) everything in it follows from the page language and the answers of the permission predicates it asks
(`can_…(current_user)`), except three values: the CSRF token of the forms, the page address the language switcher
returns to, and the person's name. So the header is rendered once per (language, those answers, script root) with a
marker in place of each of those, kept per process, and
the markers are replaced per request, escaped exactly as the template would escape them. Members of an
organization (their own links) and visitors (whose pages are cached whole, see core/contentcache.py) get the
template rendered as before.
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
    if not getattr(user, "is_authenticated", False) or getattr(user, "has_memberships", None) is not False:
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
