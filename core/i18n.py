"""Which language a response is in, and the pieces templates need to say so (Flask-Babel).

The languages on offer are English (the language the strings are written in) plus every folder of
``translations/`` that holds a ``LC_MESSAGES/messages.po`` catalog, so adding a language needs no code
change (README, "Translations"); ``LANGUAGES`` in the configuration can narrow or order the list.

A request's language, first match wins:

1. ``?lang=xx`` in the URL: an explicit address for one language, what the ``hreflang`` alternates point at
   (it changes that response only, nothing is remembered);
2. the signed-in person's preference (``users.locale``, set on the account page or by the switcher);
3. the ``lang`` cookie the language switcher sets;
4. the browser's ``Accept-Language``;
5. English.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from babel import Locale
from babel import dates as babel_dates
from flask import Flask, current_app, g, has_app_context, has_request_context, request
from flask_babel import format_date, format_datetime, format_percent, get_locale, get_translations
from flask_login import current_user
from markupsafe import Markup

from core.extensions import babel

SOURCE_LANGUAGE = "en"
LANG_COOKIE = "lang"
LANG_PARAM = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"


def catalog_languages(directory: Path = TRANSLATIONS_DIR) -> list[str]:
    """The languages with a catalog in ``directory`` (folder names), sorted."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if (p / "LC_MESSAGES" / "messages.po").is_file())


def supported_languages(app: Flask | None = None) -> list[str]:
    """English first, then every catalog's language (or ``LANGUAGES`` from the configuration)."""
    app = app or current_app
    return app.extensions["i18n_languages"]


def init_app(app: Flask) -> None:
    directory = Path(app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR)))
    configured = app.config.get("LANGUAGES")
    languages = list(configured) if configured else [SOURCE_LANGUAGE, *catalog_languages(directory)]
    if SOURCE_LANGUAGE not in languages:
        languages.insert(0, SOURCE_LANGUAGE)
    app.extensions["i18n_languages"] = languages
    babel.init_app(app, default_locale=SOURCE_LANGUAGE, locale_selector=select_locale)
    # the same callables Flask-Babel installs, but finding the request's translations once per locale instead of
    # once per string (three context lookups and a locale-to-text each time: a fifth of a logged-in page)
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n),
    )
    # {% trans %} blocks are extracted with whitespace collapsed (babel.cfg); render them the same way
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.globals.update(
        current_language=current_language,
        language_choices=language_choices,
        language_alternates=language_alternates,
        content_lang=content_lang,
        in_lang=in_lang,
        time_tag=time_tag,
    )
    app.jinja_env.filters["percent"] = percent
    app.after_request(_vary_on_language)


def _translations():
    """Flask-Babel's translations for this request, remembered beside its own per-request state and tied to
    the locale object they were found for: ``force_locale`` (mail in the reader's language) and ``refresh``
    replace that object, and the next string looks them up again."""
    state = g.get("_flask_babel") if has_app_context() else None
    if state is None:
        return get_translations()
    locale = getattr(state, "babel_locale", None)
    memo = getattr(state, "awa_translations", None)
    if memo is not None and locale is not None and memo[0] is locale:
        return memo[1]
    translations = get_translations()
    state.awa_translations = (getattr(state, "babel_locale", None), translations)
    return translations


def select_locale() -> str:
    """The language of this request (see the module docstring for the order); English outside a request."""
    if not has_request_context():
        return SOURCE_LANGUAGE
    supported = supported_languages()
    explicit = request.args.get(LANG_PARAM)
    if explicit in supported:
        return explicit
    preference = getattr(current_user, "locale", None) if current_user else None
    if preference in supported:
        return preference
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in supported:
        return cookie
    return request.accept_languages.best_match(supported, default=SOURCE_LANGUAGE)


def language_for(user) -> str:
    """The language to write to ``user`` in (emails, documents made for them): their saved preference; else,
    when they are the person making this request, the language of this request; else English."""
    supported = supported_languages()
    preference = getattr(user, "locale", None)
    if preference in supported:
        return preference
    if user is not None and has_request_context() and getattr(current_user, "id", None) == getattr(user, "id", None):
        return current_language()
    return SOURCE_LANGUAGE


def current_language() -> str:
    """The language code of the response being built, e.g. "es" (for ``<html lang>``)."""
    locale = get_locale()
    return str(locale.language) if locale else SOURCE_LANGUAGE


def content_language(thing) -> str:
    """The language of a piece of content: a code, or an object's ``language`` (courses), else English."""
    if isinstance(thing, str):
        return thing or SOURCE_LANGUAGE
    return getattr(thing, "language", None) or SOURCE_LANGUAGE


def content_lang(thing) -> Markup:
    """`` lang="en"`` (with its leading space: ``<a href="…"{{ content_lang(course) }}>``) for content (a course
    title, a skill name) in another language than the page, else nothing: screen readers then pronounce an
    English title inside a Spanish page in English."""
    code = content_language(thing)
    return Markup(' lang="{}"').format(code) if code != current_language() else Markup("")


def in_lang(text, thing) -> Markup:
    """``text`` (escaped), wrapped in ``<span lang="…">`` only when its language (see ``content_lang``)
    differs from the page's."""
    code = content_language(thing)
    if code == current_language():
        return Markup.escape(text)
    return Markup('<span lang="{}">{}</span>').format(code, text)


def time_tag(value, format: str = "long", *, with_time: bool = False, skeleton: str | None = None) -> Markup:
    """A date (or date and time) in the reader's language inside ``<time datetime="ISO">``; the pseudo-locale
    test knows such a value is formatted by Babel, not a string someone forgot to mark. ``skeleton`` picks
    fields rather than a pattern ("yMMMM": "December 2026", "diciembre de 2026")."""
    if value is None:
        return Markup("")
    if with_time:
        text, machine = format_datetime(value, format), value.isoformat()
    else:
        day = value.date() if isinstance(value, datetime) else value
        machine = day.isoformat()
        if skeleton:
            text = babel_dates.format_skeleton(skeleton, day, locale=get_locale() or SOURCE_LANGUAGE)
        else:
            text = format_date(day, format)
    return Markup('<time datetime="{}">{}</time>').format(machine, text)


def percent(value) -> str:
    """A whole-number percentage (80 for 80%) in the reader's language: "80%", "80 %"."""
    return format_percent((value or 0) / 100)


def language_name(code: str) -> str:
    """A language's name in that language, capitalized: "English", "Español"."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


def page_without_language() -> str:
    """This page's path and query without ``?lang=``: where the switcher returns to."""
    args = [(key, value) for key, value in request.args.items(multi=True) if key != LANG_PARAM]
    return request.path + (f"?{urlencode(args)}" if args else "")


def language_choices() -> list[dict[str, str]]:
    """The languages the switcher offers besides the current one: code, name, and where the link goes."""
    from flask import url_for

    current = current_language()
    here = page_without_language()
    return [
        {
            "code": code,
            "name": language_name(code),
            "next": here,
            "url": url_for("accounts.set_language", code=code, next=here),
        }
        for code in supported_languages()
        if code != current
    ]


def language_alternates() -> list[dict[str, str]]:
    """``<link rel="alternate" hreflang>`` targets: this page in each language (``?lang=``), plus x-default."""
    args = [(key, value) for key, value in request.args.items(multi=True) if key != LANG_PARAM]
    base = request.base_url
    links = [
        {"hreflang": code, "href": f"{base}?{urlencode([*args, (LANG_PARAM, code)])}"} for code in supported_languages()
    ]
    links.append({"hreflang": "x-default", "href": base + (f"?{urlencode(args)}" if args else "")})
    return links


def _vary_on_language(response):
    # the same URL is served in several languages: caches must key on what chose the language
    if not request.path.startswith("/static/"):
        if "Vary" in response.headers:
            response.vary.update(("Accept-Language", "Cookie"))
        else:  # what the update writes to a response without Vary, without parsing and rebuilding a header set
            response.headers["Vary"] = "Accept-Language, Cookie"
    return response
