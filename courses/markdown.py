"""Author Markdown → sanitized HTML, once per save (markdown-it-py + nh3 allow-list)."""

from __future__ import annotations

import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")

# Lesson images must be our own uploads (served from /media/ with a checked type): an external image would
# make every reader's browser fetch it from someone else's server (tracking, content nobody reviewed).
OWN_MEDIA = re.compile(r"/media/[0-9a-f]{64}\.(?:png|jpg|webp)")


def _image(renderer, tokens, idx, options, env) -> str:
    token = tokens[idx]
    if OWN_MEDIA.fullmatch(str(token.attrGet("src") or "")):
        return renderer.image(tokens, idx, options, env)
    return escapeHtml(renderer.renderInlineAsText(token.children or [], options, env))  # the alt text only


_md.add_render_rule("image", _image)

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "img",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}


# texts up to this many characters are rendered once per process: a catalog import renders every lesson again,
# the readability checks and studio previews the same texts (a lesson is 2-15 KB; at most ~32 MB kept)
CACHED_TEXT = 64 * 1024


def render(markdown: str) -> str:
    """Render author Markdown to HTML that is safe to put in a page or a PDF.

    Raw HTML is not passed through; links keep only http(s)/mailto and get rel="noopener noreferrer nofollow";
    images other than our own uploads (/media/<sha256>.<type>) are replaced by their alt text;
    a top-level "# " heading becomes h2 so the page keeps one h1.
    """
    return _render_kept(markdown) if len(markdown) <= CACHED_TEXT else _render(markdown)


def _render(markdown: str) -> str:
    html = _md.render(markdown)
    html = html.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


# the same text always renders to the same HTML (the renderer holds no state between calls)
_render_kept = lru_cache(maxsize=512)(_render)
