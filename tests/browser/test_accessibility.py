"""Accessibility beyond the journeys: the axe harness itself, and a quiz completed with the keyboard alone."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import arrange_learner, correct_answers, shot

BAD_PAGE = """<!doctype html><html><head><title>Broken on purpose</title></head><body>
<main><p style="color:#bbb;background:#fff">Pale grey text on white.</p>
<img src="/static/img/favicon.svg"><a href="/"></a>
<label>Email</label><input type="email" id="dup"><input type="text" id="dup"></main></body></html>"""


def test_axe_harness_reports_real_violations(live_server, phone, a11y):
    """The harness must see what a learner sees: a broken page served at a real URL fails loudly, whether it is the
    first page audited in a new audit window (which navigates to it) or a later one (its HTML replaces the audit
    window's)."""
    broken = (live_server + "/", live_server + "/?again")
    phone.route(lambda url: url in broken, lambda route: route.fulfill(content_type="text/html", body=BAD_PAGE))
    phone.goto(broken[0])
    a11y.new_window()  # whichever test ran before: this check navigates, as the session's first one does
    a11y.check(phone, "00-axe-self-test")
    found = {v["id"] for v in a11y.results["00-axe-self-test"]}
    assert {"color-contrast", "image-alt", "link-name", "label"} <= found, found
    phone.goto(live_server + "/courses")
    a11y.check(phone, "00-a-real-page-between")
    phone.goto(broken[1])
    a11y.check(phone, "00-axe-self-test-again")
    assert a11y.results["00-axe-self-test-again"] == a11y.results["00-axe-self-test"]
    with pytest.raises(AssertionError, match=r"00-axe-self-test: \[critical\] image-alt"):
        a11y.assert_clean()


COURSE = "spotting-synthetic-media"
QUIZ = f"/courses/{COURSE}/how-synthetic-media-is-made/quiz"

# what the focused element is, how its focus is drawn, and, for a quiz choice, its label and question
FOCUSED = """() => {
  const e = document.activeElement, style = getComputedStyle(e), fieldset = e.closest('fieldset.question');
  return {
    tag: e.tagName.toLowerCase(), type: e.type || '', id: e.id, name: e.name || '', checked: !!e.checked,
    text: (e.innerText || e.value || '').trim(), href: e.getAttribute('href'),
    label: e.labels && e.labels.length ? e.labels[0].innerText.split(/\\s+/).join(' ').trim() : '',
    legend: fieldset ? fieldset.querySelector('legend').innerText.split(/\\s+/).join(' ').trim() : '',
    outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth), outlineColor: style.outlineColor,
    boxShadow: style.boxShadow, inMain: !!e.closest('main'),
    visible: (r => r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0
                   && r.top < innerHeight && r.left < innerWidth)(e.getBoundingClientRect()),
  };
}"""


def _focused(page) -> dict:
    return page.evaluate(FOCUSED)


def _luminance(rgb: tuple[int, ...]) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast_on_white(rgb: tuple[int, ...]) -> float:
    return 1.05 / (_luminance(rgb) + 0.05)


def _assert_focus_visible(focus: dict) -> None:
    """Focus is drawn (an outline at least 2px wide), on screen, and in main (white) has a ring colour of 3:1 or more
    against the background (WCAG 1.4.11 non-text contrast)."""
    where = f"{focus['tag']}#{focus['id'] or focus['text'][:30]}"
    assert focus["visible"], f"focused {where} is off screen"
    assert focus["outline"] != "none" and focus["outlineWidth"] >= 2, f"no visible focus indicator on {where}: {focus}"
    if focus["inMain"]:
        colours = re.findall(r"rgba?\((\d+), (\d+), (\d+)", focus["outlineColor"] + focus["boxShadow"])
        best = max(_contrast_on_white(tuple(map(int, c))) for c in colours)
        assert best >= 3, f"focus ring on {where} contrasts only {best:.2f}:1 with white: {focus}"


def _tab(page, key: str = "Tab") -> dict:
    page.keyboard.press(key)
    focus = _focused(page)
    _assert_focus_visible(focus)
    return focus


def _skip_to_content(page) -> None:
    """The first Tab lands on a visible "Skip to main content" link; Enter moves focus past the navigation."""
    focus = _tab(page)
    assert (focus["tag"], focus["text"], focus["href"]) == ("a", "Skip to main content", "#main"), focus
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    focus = _tab(page)
    assert page.evaluate("document.activeElement.closest('main') !== null"), f"Tab after skipping: {focus}"


def test_a_quiz_can_be_passed_with_the_keyboard_alone(live_server, phone, a11y):
    """No mouse: Tab/Shift+Tab move between controls, arrow keys move within a radio group (the standard
    keyboard pattern: a group is one Tab stop and its arrow keys select), Space ticks a box, Enter submits."""
    page = phone
    # signing up and enrolling are walked in the browser elsewhere (test_learner_journey): here, on the server
    arrange_learner("kim@example.org", "Kim Keyboard", "tab order space enter 42", enrolled_in=COURSE)
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("kim@example.org")
    page.get_by_label("Password").fill("tab order space enter 42")
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    page.goto(live_server + QUIZ)
    answers = correct_answers(COURSE)

    _skip_to_content(page)
    for _ in range(30):
        focus = _tab(page)
        if focus["text"] == "Start the quiz":
            break
    else:
        raise AssertionError("Tab never reached “Start the quiz”")
    with page.expect_navigation(url="**/quiz/attempts/1"):
        page.keyboard.press("Enter")

    _skip_to_content(page)
    focus = _focused(page)
    answered, submitted = set(), False
    for _ in range(80):
        if focus["tag"] == "input" and focus["legend"]:
            prompt = focus["legend"].split(". ", 1)[1].removesuffix(" Choose all that apply.")
            right = answers[prompt]
            if focus["type"] == "radio":  # one Tab stop: arrow down until the right choice is selected
                for _ in range(8):
                    if focus["label"] in right:
                        break
                    focus = _tab(page, "ArrowDown")
                    assert focus["type"] == "radio" and focus["checked"], focus
                if not focus["checked"]:
                    page.keyboard.press("Space")
                assert focus["label"] in right and _focused(page)["checked"], focus
            elif focus["label"] in right:  # each checkbox is its own Tab stop
                page.keyboard.press("Space")
                assert _focused(page)["checked"], focus
            answered.add(prompt)
        elif focus["tag"] == "button" and focus["text"] == "Submit answers":
            shot(page, "40-keyboard-submit-focused")
            # Shift+Tab goes back into the last question and Tab returns to the button
            assert _tab(page, "Shift+Tab")["legend"], "Shift+Tab from Submit did not return to the questions"
            assert _tab(page)["text"] == "Submit answers"
            with page.expect_navigation():
                page.keyboard.press("Enter")
            submitted = True
            break
        focus = _tab(page)
    assert submitted, "Tab never reached “Submit answers”"
    assert "You passed" in page.content() and "Attempt 1: 100%" in page.content(), page.content()
    assert len(answered) == page.locator("section.question").count() == 6
    a11y.check(page, "41-keyboard-quiz-result")
    a11y.assert_clean()
