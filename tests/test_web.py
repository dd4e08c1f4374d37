"""The web chat in a real browser: Debian's Chromium driven by Playwright against the real server and model.

The corpus is the seed article plus two hostile documents whose text (and title) is HTML markup; the seed
article's vectors are reused from the session's seed index, so only the two small documents are embedded here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import JAPAN_ANSWER, JAPAN_ANSWERS, JAPAN_QUESTION, SEEDS, LiveServer
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index
from qa.store import IndexData

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}

XSS_TXT = "xss.txt"
XSS_HTML = "notes/markup & tags.html"  # a folder, a space and '&': the page must encode each path segment
SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
XSS_TEXT = (
    f"Markup pasted into a text file must show as text: {SCRIPT} and {IMG} are only characters here.\n"
    "The harbour lighthouse is painted red and white, and its lamp turns once every ten seconds.\n"
)
XSS_PAGE = (
    "<html><head><title>Escaped &lt;img src=x onerror=&quot;window.__xss=1&quot;&gt; notes</title></head>"
    "<body><p>The museum garden has three fountains and a rose walk.</p>"
    "<p>Escaped markup: &lt;script&gt;window.__xss=1&lt;/script&gt; stays text.</p></body></html>"
)
# What issue 6 serves the page with: no inline script or style anywhere, every fetch to the same origin.
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
ARMS_QUESTION = "Что Япония сделала с ограничениями на экспорт оружия?"
ARMS_ANSWER = "В декабре Япония значительно ослабила ограничения на экспорт оружия."  # the article's last paragraph


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def web_settings(tmp_path_factory: pytest.TempPathFactory, seed_settings: Settings, seed_index: IndexData) -> Settings:
    base = tmp_path_factory.mktemp("web")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / XSS_TXT).write_text(XSS_TEXT, encoding="utf-8")
    (seeds / XSS_HTML).parent.mkdir()
    (seeds / XSS_HTML).write_text(XSS_PAGE, encoding="utf-8")
    shutil.copytree(seed_settings.index_dir, base / "index")  # the seed article is reused, not re-embedded
    return Settings(seeds_dir=seeds, index_dir=base / "index")


@pytest.fixture(scope="session")
def web_index(web_settings: Settings, default_embedder: Embedder) -> IndexData:
    report, data = build_index(web_settings, embedder=default_embedder)
    assert not report.failed and data is not None and len(data.documents) == 3
    return data


@pytest.fixture(scope="session")
def web_answerer(web_index: IndexData, default_embedder: Embedder) -> Answerer:
    return Answerer(default_embedder, web_index)


@pytest.fixture(scope="session")
def web_server(web_settings: Settings, web_answerer: Answerer) -> Iterator[LiveServer]:
    with LiveServer(create_app(web_settings, answerer=web_answerer)) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium), see .ci/run")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        expect.set_options(timeout=20_000)
        yield chromium
        chromium.close()


class Chat:
    """One browser tab on the chat page; records /ask requests and fails the test on any JavaScript error."""

    def __init__(self, browser: Browser, url: str, viewport: dict[str, int] = DESKTOP) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.asks: list[Request] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.asks.append(r) if r.url.endswith("/ask") else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(url)
        expect(self.page.locator("#corpus")).not_to_have_attribute("data-state", "loading")

    @property
    def input(self):
        return self.page.get_by_label("Your question")

    def answers(self):
        return self.page.locator("#messages > .msg.assistant:not(.pending)")

    def ask(self, question: str):
        """Type the question, press Enter, and return the new answer (or error) in the transcript."""
        before = self.answers().count()
        self.input.fill(question)
        self.input.press("Enter")
        expect(self.answers()).to_have_count(before + 1)
        return self.answers().nth(before)

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"


@pytest.fixture()
def chat(browser: Browser, web_server: LiveServer) -> Iterator[Chat]:
    tab = Chat(browser, web_server.url)
    yield tab
    tab.close()


def _fits_width(page: Page) -> bool:
    return page.evaluate(
        "() => [document.documentElement, document.querySelector('#main')]"
        ".every(el => el.scrollWidth <= el.clientWidth)"
    )


# ------------------------------------------------------------------------------------------------ tests


def test_header_names_the_corpus(chat: Chat, web_index: IndexData) -> None:
    expect(chat.page.locator("#corpus")).to_have_text(f"Answering from 3 documents · {len(web_index.chunks)} passages")


def test_japan_question_cites_the_indo_pacific_command(chat: Chat) -> None:
    held = []
    chat.page.route("**/ask", lambda route: held.append(route))  # hold the request: see the busy state
    chat.input.fill(JAPAN_QUESTION)
    chat.input.press("Enter")
    expect(chat.page.locator(".msg.pending")).to_contain_text("Searching")
    expect(chat.page.locator("#send")).to_be_disabled()
    expect(chat.page.locator("#send")).to_contain_text("Searching…")
    expect(chat.input).to_have_value("")
    held[0].continue_()
    chat.page.unroute("**/ask")

    answer = chat.answers().first
    expect(answer.locator(".answer-text")).to_contain_text(JAPAN_ANSWER)
    first = answer.locator(".citation").first
    expect(first.locator(".badge")).to_have_text("[1]")
    expect(first.locator(".title")).to_have_text("Us japan security talks")
    expect(first.locator("mark")).to_contain_text(JAPAN_ANSWER)
    expect(first.locator(".passage")).to_contain_text("командующий войсками США в Японии")
    expect(answer.locator(".citation .badge")).to_have_text([f"[{n}]" for n in range(1, 6)])
    expect(chat.page.locator("#send")).to_be_enabled()
    expect(chat.page.locator("#announcer")).to_contain_text(JAPAN_ANSWER)  # the aria-live region
    assert chat.page.locator("#announcer").get_attribute("aria-live") == "polite"


def test_follow_up_sends_the_earlier_turns_as_history(chat: Chat) -> None:
    chat.ask(JAPAN_QUESTION)
    with chat.page.expect_request("**/ask") as sent:
        second = chat.ask("and where is it based?")
    body = sent.value.post_data_json
    assert body["question"] == "and where is it based?" and body["top_k"] == 5
    assert body["history"][0] == {"role": "user", "content": JAPAN_QUESTION}
    assert body["history"][1]["role"] == "assistant" and body["history"][1]["content"] in JAPAN_ANSWERS
    assert len(body["history"]) == 2
    expect(chat.answers()).to_have_count(2)
    expect(second.locator(".citation").first.locator("mark")).not_to_be_empty()


def test_history_keeps_the_last_twenty_turns(chat: Chat) -> None:
    questions = [f"question number {n}?" for n in range(12)]
    for question in questions:
        chat.ask(question)
    history = chat.asks[-1].post_data_json["history"]
    assert len(history) == 20  # 11 earlier exchanges make 22 turns: the oldest exchange is dropped
    assert [turn["content"] for turn in history[::2]] == questions[1:11]
    assert {turn["role"] for turn in history[1::2]} == {"assistant"}


def test_open_document_marks_the_cited_span_in_view(chat: Chat, web_server: LiveServer) -> None:
    answer = chat.ask(ARMS_QUESTION)
    first = answer.locator(".citation").first
    expect(first.locator("mark")).to_have_text(ARMS_ANSWER)
    first.get_by_role("button", name="Open document").click()

    viewer = chat.page.get_by_role("dialog")
    expect(viewer).to_be_visible()
    expect(viewer.locator("h2")).to_have_text("Us japan security talks")
    mark = viewer.locator("mark#cited-span")
    expect(mark).to_have_text(ARMS_ANSWER)
    full = httpx.get(f"{web_server.url}/documents/us-japan-security-talks.txt").json()["text"]
    assert viewer.locator("#viewer-body").text_content() == full  # the whole text, offsets intact
    body = viewer.locator("#viewer-body")
    assert body.evaluate("el => el.scrollTop") > 0  # the span is near the end: the viewer scrolled to it
    box, view = mark.bounding_box(), body.bounding_box()
    assert box and view and view["y"] <= box["y"] and box["y"] + box["height"] <= view["y"] + view["height"]

    chat.page.keyboard.press("Escape")  # keyboard: Escape closes and focus returns to the button
    expect(viewer).to_be_hidden()
    expect(first.get_by_role("button", name="Open document")).to_be_focused()


def test_hostile_documents_render_as_text_and_run_nothing(chat: Chat) -> None:
    lighthouse = chat.ask("what colour is the harbour lighthouse?")
    museum = chat.ask("how many fountains are in the museum garden?")
    txt = lighthouse.locator(".citation", has_text="xss.txt").first
    expect(txt.locator(".passage")).to_contain_text(SCRIPT)
    expect(txt.locator(".passage")).to_contain_text(IMG)
    page_doc = museum.locator(".citation", has_text=XSS_HTML).first
    expect(page_doc.locator(".title")).to_have_text(f"Escaped {IMG} notes")
    expect(page_doc.locator(".passage")).to_contain_text("three fountains")

    page_doc.get_by_role("button", name="Open document").click()  # fetched at /documents/notes/markup%20%26%20tags.html
    viewer = chat.page.get_by_role("dialog")
    expect(viewer.locator("h2")).to_have_text(f"Escaped {IMG} notes")
    expect(viewer.locator("#viewer-body")).to_contain_text(SCRIPT)
    chat.page.keyboard.press("Escape")
    txt.get_by_role("button", name="Open document").click()
    expect(viewer.locator("#viewer-body")).to_contain_text(IMG)

    assert chat.page.locator("#messages img, #messages script, #viewer img, #viewer script").count() == 0
    assert chat.page.evaluate("() => window.__xss") is None


def test_enter_sends_and_shift_enter_makes_a_new_line(chat: Chat) -> None:
    chat.input.click()
    chat.page.keyboard.type("who commands")
    chat.page.keyboard.press("Shift+Enter")
    chat.page.keyboard.type("US troops in Japan?")
    expect(chat.input).to_have_value("who commands\nUS troops in Japan?")
    assert chat.asks == []
    with chat.page.expect_request("**/ask") as sent:
        chat.page.keyboard.press("Enter")
    assert sent.value.post_data_json["question"] == "who commands\nUS troops in Japan?"
    expect(chat.page.locator(".msg.user .bubble")).to_have_text("who commands\nUS troops in Japan?")
    expect(chat.answers().first.locator(".citation mark").first).to_contain_text(JAPAN_ANSWER)


def test_empty_input_is_not_sent(chat: Chat) -> None:
    chat.input.press("Enter")
    chat.input.fill("   \n  ")
    chat.input.press("Enter")
    chat.page.get_by_role("button", name="Send").click()
    with chat.page.expect_request("**/ask") as sent:  # the first request to leave is the real question
        chat.ask(JAPAN_QUESTION)
    assert sent.value.post_data_json["question"] == JAPAN_QUESTION
    assert len(chat.asks) == 1
    expect(chat.page.locator(".msg.user")).to_have_count(1)


def test_server_down_says_so_and_recovers(browser: Browser, web_settings: Settings, web_answerer: Answerer) -> None:
    server = LiveServer(create_app(web_settings, answerer=web_answerer))
    with server:
        tab = Chat(browser, server.url)
        expect(tab.page.locator("#corpus")).to_have_attribute("data-state", "ok")
    try:
        error = tab.ask(JAPAN_QUESTION)
        expect(error.get_by_role("alert")).to_contain_text("Cannot reach the server")
        expect(error).to_contain_text("qa serve")
        expect(tab.page.locator("#corpus")).to_have_text("Server unreachable")
        with LiveServer(create_app(web_settings, answerer=web_answerer), port=server.port):
            error.get_by_role("button", name="Try again").click()
            expect(tab.answers().first.locator(".answer-text")).to_contain_text(JAPAN_ANSWER)
            expect(tab.page.locator("#corpus")).to_have_attribute("data-state", "ok")
    finally:
        tab.close()


def test_rejected_question_shows_the_servers_422_message(chat: Chat, web_server: LiveServer) -> None:
    question = "x" * 2001
    chat.input.fill(question)
    expect(chat.page.locator("#composer-hint.over")).to_have_text("2,001 / 2,000 characters")
    chat.input.press("Enter")
    reply = httpx.post(f"{web_server.url}/ask", json={"question": question, "top_k": 5, "history": []})
    assert reply.status_code == 422
    error = chat.answers().first.get_by_role("alert")
    expect(error).to_contain_text("The question was not accepted")
    expect(error).to_contain_text(reply.json()["detail"])


def test_empty_index_shows_the_servers_503_message(browser: Browser, tmp_path: Path, e5: Embedder) -> None:
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    with LiveServer(create_app(settings, answerer=Answerer(e5, None))) as server:
        tab = Chat(browser, server.url)
        try:
            expect(tab.page.locator("#corpus")).to_contain_text("No documents indexed yet")
            error = tab.ask(JAPAN_QUESTION).get_by_role("alert")
            reply = httpx.post(f"{server.url}/ask", json={"question": JAPAN_QUESTION})
            assert reply.status_code == 503 and "qa index" in reply.json()["detail"]
            expect(error).to_contain_text("The service is not ready")
            expect(error).to_contain_text(reply.json()["detail"])
        finally:
            tab.close()


def test_no_answer_still_lists_the_closest_passages(
    browser: Browser, web_settings: Settings, web_index, default_embedder
) -> None:
    strict = Answerer(default_embedder, web_index, min_score=2.0)  # no score reaches 2: every question is unanswered
    with LiveServer(create_app(web_settings, answerer=strict)) as server:
        tab = Chat(browser, server.url)
        try:
            answer = tab.ask(JAPAN_QUESTION)
            expect(answer.locator(".no-answer")).to_contain_text("No answer found")
            expect(answer.locator(".answer-text")).to_have_count(0)
            expect(answer.locator(".sources h3")).to_have_text("Closest passages")
            expect(answer.locator(".citation")).to_have_count(5)
            expect(tab.page.locator("#announcer")).to_contain_text("No answer found")
        finally:
            tab.close()


def test_phone_width_has_no_horizontal_scroll(browser: Browser, web_server: LiveServer) -> None:
    tab = Chat(browser, web_server.url, viewport=PHONE)
    try:
        assert _fits_width(tab.page)
        tab.ask(JAPAN_QUESTION)
        tab.ask("what colour is the harbour lighthouse?")  # long unbroken markup tokens in the passages
        assert _fits_width(tab.page)
        tab.answers().first.get_by_role("button", name="Open document").first.click()
        body = tab.page.locator("#viewer-body")
        expect(body.locator("mark")).to_be_visible()
        assert body.evaluate("el => el.scrollWidth <= el.clientWidth")
        viewer = tab.page.get_by_role("dialog").bounding_box()
        assert viewer and viewer["x"] >= 0 and viewer["x"] + viewer["width"] <= PHONE["width"]
    finally:
        tab.close()


def test_page_works_under_a_strict_content_security_policy(browser: Browser, web_server: LiveServer) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)

    def with_csp(route) -> None:
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route(f"{web_server.url}/", with_csp)
    try:
        page.goto(f"{web_server.url}/")
        expect(page.locator("#corpus")).to_have_attribute("data-state", "ok")
        page.get_by_role("button", name=JAPAN_QUESTION).click()  # an example question, sent as is
        expect(page.locator(".citation mark").first).to_contain_text(JAPAN_ANSWER)
        page.locator(".open-doc").first.click()
        expect(page.locator("#cited-span")).to_contain_text(JAPAN_ANSWER)
        assert violations == []
    finally:
        context.close()


def test_page_asks_for_the_api_key_once_and_keeps_it(browser: Browser, web_settings: Settings, web_answerer) -> None:
    locked = web_settings.model_copy(update={"api_key": "s3cret-key"})
    with LiveServer(create_app(locked, answerer=web_answerer)) as server:
        tab = Chat(browser, server.url)
        try:
            tab.input.fill(JAPAN_QUESTION)
            tab.input.press("Enter")
            key = tab.page.get_by_label("API key", exact=True)
            expect(key).to_be_visible()
            key.fill("s3cret-key")
            tab.page.get_by_role("button", name="Save key").click()
            expect(tab.answers().first.locator(".answer-text")).to_contain_text(JAPAN_ANSWER)
            assert tab.asks[-1].headers.get("authorization") == "Bearer s3cret-key"
            assert tab.page.evaluate("() => localStorage.getItem('qa.apiKey')") == "s3cret-key"

            tab.page.reload()
            expect(tab.page.locator("#corpus")).not_to_have_attribute("data-state", "loading")
            tab.ask(JAPAN_QUESTION)
            expect(tab.page.get_by_label("API key", exact=True)).to_be_hidden()
            assert tab.asks[-1].headers.get("authorization") == "Bearer s3cret-key"
        finally:
            tab.close()
