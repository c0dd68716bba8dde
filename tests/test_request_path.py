"""What every request that reaches Flask pays, made cheaper without changing an answer: WTForms' attribute builder
(core/formrender.py), the session's signing serializer kept per secret (core/sessions.py) and a visitor's site
header rendered once per language (core/header.py)."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from flask_babel import lazy_gettext
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from core import create_app
from core.formrender import ORIGINAL, html_params
from tests.conftest import test_config as make_config
from tests.factories import make_user, sign_in

# ---- WTForms' html_params --------------------------------------------------------------------------------------

KEYS = st.one_of(
    st.sampled_from(["id", "name", "type", "value", "class_", "for_", "data_a_b", "aria_describedby", "aria_x_"]),
    st.sampled_from(["required", "checked", "readonly", "lang", "maxlength", "data_", "aria_", "x__", "a-b"]),
    st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8),
)
VALUES = st.one_of(
    st.booleans(),
    st.none(),
    st.integers(),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
    st.sampled_from(['"', "'", "<b>&amp;</b>", 'a"b<c>&d', "\x1e", "&quot;"]),
    st.text(max_size=20).map(Markup),  # already safe: a " in it is written as &quot;
    st.sampled_from([Markup('a"b'), Markup("<i>x</i>"), Markup("&amp;")]),
)


@pytest.mark.nodb
@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_html_params_writes_what_wtforms_writes(kwargs):
    ours, theirs = html_params(**kwargs), ORIGINAL(**kwargs)
    assert type(ours) is Markup and ours == theirs


@pytest.mark.nodb
def test_html_params_examples_and_lazy_strings(app):
    assert html_params(name="text1", id="f", class_="text") == 'class="text" id="f" name="text1"'
    assert html_params(checked=True, readonly=False, name="text1", abc="hello") == 'abc="hello" checked name="text1"'
    assert html_params(data_attr="user.name", aria_labeled_by="n") == 'aria-labeled-by="n" data-attr="user.name"'
    assert html_params(value='"><script>') == 'value="&#34;&gt;&lt;script&gt;"'
    assert html_params(title=Markup('say "hi"')) == 'title="say &quot;hi&quot;"'
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        label = lazy_gettext("Log in")
        assert html_params(title=label) == ORIGINAL(title=label) == 'title="Iniciar sesión"'


@pytest.mark.nodb
def test_the_forms_on_a_page_are_rendered_by_it(app):
    """Installed where WTForms looks it up: inputs, buttons, selects and options, textareas and labels."""
    from wtforms import widgets
    from wtforms.widgets import core

    assert core.html_params is html_params and widgets.html_params is html_params
    assert core.Input.html_params is html_params and core.Button.html_params is html_params
    assert core.TextInput().html_params is html_params and core.Select.render_option


def test_a_form_re_rendered_after_a_failed_post_is_unchanged(client, ctx):
    """The account form with an empty name: 422, the form shown again with the person's values, escaped."""
    make_user(email="lee@example.org", name="Lee Learner")
    sign_in(client, "lee@example.org")
    response = client.submit("/account", {"name": "", "legal_name": '"><b>Lee</b>'})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="&#34;&gt;&lt;b&gt;Lee&lt;/b&gt;"' in html and "<b>Lee</b>" not in html
    assert re.search(r'<input[^>]* id="name"[^>]* name="name"[^>]* required[^>]* type="text" value="">', html)
    assert 'aria-invalid="true"' in html or "error" in html


# ---- the session's signing serializer ----------------------------------------------------------------------------


@pytest.mark.nodb
def test_the_session_serializer_is_kept_per_secret_and_follows_a_rotation(tmp_path_factory):
    config = make_config(tmp_path_factory, "sqlite://")
    app = create_app(config)
    app.add_url_rule("/__count", "count", _count)
    interface = app.session_interface
    assert interface.get_signing_serializer(app) is interface.get_signing_serializer(app)
    client = app.test_client()
    assert client.get("/__count").get_data(as_text=True) == "1"
    assert client.get("/__count").get_data(as_text=True) == "2"
    # the key rotated, the old one kept as a fallback: the cookie still opens, and is signed anew
    old = app.config["SECRET_KEY"]
    app.config.update(SECRET_KEY="another-secret-key-" + "y" * 32, SECRET_KEY_FALLBACKS=[old])
    app.secret_key = app.config["SECRET_KEY"]
    assert client.get("/__count").get_data(as_text=True) == "3"
    # the fallback dropped: the cookie signed with the new key still opens
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/__count").get_data(as_text=True) == "4"
    # a cookie signed with a key no longer known is refused (an empty session), as Flask refuses it
    app.secret_key = app.config["SECRET_KEY"] = "a-third-secret-key-" + "z" * 32
    assert client.get("/__count").get_data(as_text=True) == "1"


def _count():
    from flask import session

    session["n"] = session.get("n", 0) + 1
    return str(session["n"])


# ---- a visitor's site header -------------------------------------------------------------------------------------


@pytest.mark.nodb
@pytest.mark.parametrize(
    ("path", "headers", "root"),
    [
        ("/help", {}, ""),
        ("/login?next=/account&x=a%20b", {}, ""),
        ("/courses?q=%22%3E%3Cscript%3E&q=%C3%A9", {"Accept-Language": "es"}, ""),
        ("/no-such-page?lang=es", {}, ""),
        ("/help", {"Cookie": "lang=es"}, "/academy"),
    ],
)
def test_a_visitors_header_from_the_per_process_copy_is_the_full_render(app, path, headers, root):
    from flask import render_template

    from core.header import cached_site_header

    app.extensions.pop("site_headers", None)
    for _ in range(2):  # rendered and kept, then filled from the copy
        with app.test_request_context(path, headers=headers, environ_base={"SCRIPT_NAME": root}):
            app.preprocess_request()
            cached = cached_site_header()
            assert isinstance(cached, Markup) and "\x1e" not in cached
            assert str(cached) == render_template("_site_header.html")
    assert any(key[0] == "visitor" for key in app.extensions["site_headers"])


def test_a_visitors_language_links_return_to_their_own_page(app):
    client = app.test_client()
    for path in ("/help", "/login?next=/account"):
        page = client.get(path).get_data(as_text=True)
        header = page.split('<header class="site-header">')[1].split("</header>")[0]
        links = set(re.findall(r'href="(/language/es\?next=[^"]+)"', header))
        assert len(links) == 1, links
        switched = client.get(links.pop().replace("&amp;", "&"))
        assert switched.status_code == 303 and unquote(switched.headers["Location"]) == path
        assert "lang=es" in switched.headers["Set-Cookie"]
        client.delete_cookie("lang")


# ---- the hooks -----------------------------------------------------------------------------------------------------


def test_rate_limit_headers_only_where_a_limit_was_checked(client, ctx):
    """Flask-Limiter's response hook runs for requests that checked a limit (the login POST): its headers and the
    429 with Retry-After are as before; a page without a limit gets none, and every response its security headers."""
    page = client.get("/login")
    assert page.status_code == 200 and "X-RateLimit-Limit" not in page.headers
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Vary"] == "Accept-Language, Cookie"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    limit = client.application.config["RATELIMIT_LOGIN"]
    client.application.config["RATELIMIT_LOGIN"] = "2 per minute"
    try:
        answers = [client.submit("/login", {"email": "nobody@example.org", "password": "x"}) for _ in range(3)]
    finally:
        client.application.config["RATELIMIT_LOGIN"] = limit
    assert [answer.status_code for answer in answers] == [422, 422, 429]
    assert answers[0].headers["X-RateLimit-Limit"] == "2" and answers[0].headers["X-RateLimit-Remaining"] == "1"
    assert int(answers[2].headers["Retry-After"]) > 0 and answers[2].headers["X-RateLimit-Remaining"] == "0"
    assert all(answer.headers.getlist("X-Frame-Options") == ["DENY"] for answer in answers)


def test_a_views_own_security_header_is_kept_and_none_is_doubled(app):
    from flask import Response

    from core.security import HEADERS

    with app.test_request_context("/"):
        mine = Response("x", headers={"X-Frame-Options": "SAMEORIGIN", "content-security-policy": "default-src 'none'"})
        out = app.process_response(mine)
        assert out.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
        assert out.headers.getlist("Content-Security-Policy") == ["default-src 'none'"]
        assert all(len(out.headers.getlist(name)) == 1 for name in HEADERS)
        assert out.headers["Vary"] == "Accept-Language, Cookie"
        other = Response("y", headers={"Vary": "Accept"})
        assert app.process_response(other).headers["Vary"] == "Accept, Accept-Language, Cookie"


@pytest.mark.nodb
def test_ensure_sync_answers_as_flask_does(app):
    import asyncio
    import functools

    from flask import Flask

    def plain():
        return "x"

    async def coroutine():
        return "y"

    for func in (plain, functools.partial(plain), app.view_functions["core.help"], str.upper):
        assert app.ensure_sync(func) is Flask.ensure_sync(app, func)
    assert app.ensure_sync(plain) is plain
    # a coroutine goes to Flask's own check (which wants the 'async' extra, not installed here)
    assert asyncio.iscoroutinefunction(coroutine)
    with pytest.raises(RuntimeError, match="async"):
        app.ensure_sync(coroutine)
