"""The web chat in a real browser: Debian's Chromium driven by Playwright against the real server and model.

The corpus is the seed article plus two hostile documents whose text (and title) is HTML markup; the seed
article's vectors are reused from the session's seed index, so only the two small documents are embedded here.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from conftest import JAPAN_ANSWER, JAPAN_ANSWERS, JAPAN_QUESTION, SEEDS, TINY, TINY_ANSWER, LiveServer
from formatfactory import text_pdf_pages
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from qa.answer import Answerer
from qa.api import create_app
from qa.config import Settings
from qa.embedding import Embedder
from qa.indexer import build_index
from qa.models import Citation, Span
from qa.slack_render import document_link
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
    expect(chat.page.locator("#corpus")).to_have_text(f"Answering from 3 documents · {web_index.num_chunks} passages")


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
    expect(answer.locator(".possibly")).to_have_count(0)  # a sure answer reads as one
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
            expect(tab.input).to_be_focused()  # the button went with the error: the focus is not left on <body>
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
            expect(answer.locator(".sources h2")).to_have_text("Closest passages")
            expect(answer.locator(".citation")).to_have_count(5)
            expect(answer.locator(".small-talk")).to_have_count(0)
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
    locked = web_settings.model_copy(update={"api_key": "s3cret-key"})  # QA_API_KEY: every endpoint wants it
    with LiveServer(create_app(locked, answerer=web_answerer)) as server:
        tab = Chat(browser, server.url)
        try:
            # GET /collections answers 401 at load: the page asks at once, in a labelled modal form
            prompt = tab.page.get_by_role("dialog", name="API key needed")
            expect(prompt).to_be_visible()
            key = prompt.get_by_label("API key", exact=True)
            expect(key).to_be_focused()
            key.fill("wrong-key")
            key.press("Enter")
            expect(prompt).to_contain_text("That key was not accepted")  # a refused key is asked for again
            key.fill("s3cret-key")
            prompt.get_by_role("button", name="Save key").click()
            expect(prompt).to_be_hidden()
            expect(tab.input).to_be_focused()  # back where the person was
            answer = tab.ask(JAPAN_QUESTION)
            expect(answer.locator(".answer-text")).to_contain_text(JAPAN_ANSWER)
            assert tab.asks[-1].headers.get("authorization") == "Bearer s3cret-key"
            assert tab.page.evaluate("() => sessionStorage.getItem('qa.apiKey')") == "s3cret-key"
            assert tab.page.evaluate("() => localStorage.getItem('qa.apiKey')") is None  # kept for the tab only
            assert "s3cret-key" not in tab.page.url

            tab.page.reload()  # the same tab: the key is still there, nothing asked
            expect(tab.page.locator("#corpus")).not_to_have_attribute("data-state", "loading")
            tab.ask(JAPAN_QUESTION)
            expect(prompt).to_be_hidden()
            assert tab.asks[-1].headers.get("authorization") == "Bearer s3cret-key"
        finally:
            tab.close()


def test_the_start_up_token_is_kept_for_the_tab_and_taken_out_of_the_address(
    browser: Browser, web_settings: Settings, web_answerer
) -> None:
    """qa serve prints http://127.0.0.1:8000/#token=…: the page sends it as Bearer and drops it from the URL."""
    token = "session-token-4f7a"
    locked = web_settings.model_copy(update={"api_key": token})
    with LiveServer(create_app(locked, answerer=web_answerer)) as server:
        sent: list[tuple[str, str | None]] = []
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.on(
            "request",
            lambda r: (
                sent.append((r.url, r.headers.get("authorization")))
                if re.search(r"/(ask|collections|documents)([?/]|$)", r.url)
                else None
            ),
        )
        try:
            page.goto(f"{server.url}/#token={token}")
            expect(page).to_have_url(f"{server.url}/")  # gone from the address (and so from history) at once
            expect(page.locator("#corpus")).to_have_attribute("data-state", "ok")
            assert page.evaluate("() => sessionStorage.getItem('qa.apiKey')") == token
            assert page.evaluate("() => localStorage.getItem('qa.apiKey')") is None
            page.get_by_label("Your question").fill(JAPAN_QUESTION)
            page.get_by_label("Your question").press("Enter")
            expect(page.locator(".answer-text")).to_contain_text(JAPAN_ANSWER)
            page.get_by_role("button", name="Documents", exact=True).click()
            expect(page.locator("#doc-list .doc")).to_have_count(3)
            expect(page.get_by_role("dialog", name="API key needed")).to_be_hidden()  # never asked
            paths = {url.removeprefix(server.url).split("?")[0] for url, _ in sent}
            assert {"/collections", "/ask", "/documents"} <= paths
            assert {auth for _, auth in sent} == {f"Bearer {token}"}  # on every request
            assert all(token not in url for url, _ in sent)  # never in a URL
        finally:
            context.close()


# ------------------------------------------------------------------------------------------------ documents panel

NOTES = 20  # with the two TINY documents, more than one page of the panel (20 a page)
LIGHTHOUSE = "The harbour lighthouse is painted red and white, and its lamp turns once every ten seconds."
HARBOUR_QUESTION = "who is the harbour master of Valdoria?"


@pytest.fixture(scope="session")
def library_base(tmp_path_factory: pytest.TempPathFactory, e5: Embedder) -> Settings:
    """The TINY corpus plus 20 one-line notes, indexed once with e5; each test changes its own copy."""
    base = tmp_path_factory.mktemp("library")
    (base / "seeds").mkdir()
    for name, text in TINY.items():
        (base / "seeds" / name).write_text(text, encoding="utf-8")
    for n in range(NOTES):
        (base / "seeds" / f"note-{n:02d}.txt").write_text(f"Note {n}: locker {n} holds box {n * 7}.", encoding="utf-8")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index", embedder="e5")
    report, data = build_index(settings, embedder=e5)
    assert not report.failed and data is not None and len(data.documents) == NOTES + len(TINY)
    return settings


@dataclass
class Library:
    server: LiveServer
    settings: Settings

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture()
def library(library_base: Settings, tmp_path: Path, e5: Embedder) -> Iterator[Library]:
    """The real app over a private copy of the corpus, which uploads and deletions change."""
    shutil.copytree(library_base.seeds_dir, tmp_path / "seeds")
    shutil.copytree(library_base.index_dir, tmp_path / "index")
    settings = library_base.model_copy(update={"seeds_dir": tmp_path / "seeds", "index_dir": tmp_path / "index"})
    _, data = build_index(settings, embedder=e5)  # nothing changed: loads the copied index
    with LiveServer(create_app(settings, answerer=Answerer(e5, data))) as server:
        yield Library(server, settings)


def _open_panel(tab: Chat):
    tab.page.get_by_role("button", name="Documents", exact=True).click()
    panel = tab.page.get_by_role("dialog", name="Documents")
    expect(panel).to_be_visible()
    return panel


def test_upload_with_the_button_reports_each_file(browser: Browser, library: Library, tmp_path: Path) -> None:
    files = tmp_path / "upload"
    files.mkdir()
    (files / "lighthouse notes.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    (files / "broken.pdf").write_bytes(b"%PDF-1.4 junk")
    refused = httpx.post(f"{library.url}/documents", files=[("file", ("broken.pdf", b"%PDF-1.4 junk"))])
    assert refused.status_code == 422  # what the server says about the bad file, shown next to its name below
    tab = Chat(browser, library.url)
    try:
        expect(tab.page.locator("#corpus")).to_contain_text("Answering from 22 documents")
        panel = _open_panel(tab)
        expect(panel.locator("#doc-count")).to_have_text("(22)")
        held = []
        tab.page.route(
            "**/documents", lambda route: held.append(route) if route.request.method == "POST" else route.continue_()
        )
        panel.get_by_label("Files to upload").set_input_files([files / "lighthouse notes.txt", files / "broken.pdf"])
        expect(panel.locator("#upload-progress")).to_be_visible()  # held: the bar shows while the server works
        expect(panel.locator("#upload-progress")).to_contain_text("2 files")
        expect(panel.get_by_role("button", name="Choose files…")).to_be_disabled()
        held[0].continue_()
        tab.page.unroute("**/documents")

        results = panel.locator(".upload-result")
        expect(results).to_have_count(2)
        expect(panel.locator("#upload-progress")).to_be_hidden()
        good, bad = results.filter(has_text="ighthouse notes"), results.filter(has_text="broken.pdf")
        expect(good.locator(".result-status")).to_have_text("Indexed")
        expect(bad.locator(".result-status")).to_have_text("Failed")
        reason = refused.json()["errors"][0]["message"] if refused.json().get("errors") else refused.json()["detail"]
        expect(bad.locator(".result-reason")).to_contain_text(reason)
        expect(panel.locator("#doc-count")).to_have_text("(23)")  # the list is read again after the upload
        expect(tab.page.locator("#corpus")).to_contain_text("Answering from 23 documents")
        expect(panel.locator("#library-announcer")).to_have_text("1 file indexed, 1 failed.")  # heard inside the modal

        tab.page.keyboard.press("Escape")
        answer = tab.ask("what colour is the harbour lighthouse?")
        expect(answer.locator(".citation").first.locator("mark")).to_contain_text("red and white")
        expect(answer.locator(".citation").first.locator(".doc-id")).to_have_text("lighthouse notes.txt")
    finally:
        tab.close()


def test_files_dropped_on_the_page_are_uploaded(browser: Browser, library: Library) -> None:
    tab = Chat(browser, library.url)
    try:
        files = tab.page.evaluate_handle(
            """(items) => {
                const data = new DataTransfer();
                for (const [name, text] of items) data.items.add(new File([text], name, { type: "text/plain" }));
                return data;
            }""",
            [["dropped lighthouse.txt", LIGHTHOUSE], [f"{IMG}.txt", "The museum garden has three fountains."]],
        )
        tab.page.locator("#main").dispatch_event("dragover", {"dataTransfer": files})
        tab.page.locator("#main").dispatch_event("drop", {"dataTransfer": files})  # anywhere on the chat
        panel = tab.page.get_by_role("dialog", name="Documents")
        expect(panel).to_be_visible()  # the panel opens to show the upload
        results = panel.locator(".upload-result")
        expect(results).to_have_count(2)
        expect(results.locator(".result-status")).to_have_text(["Indexed", "Indexed"])
        expect(results.first.locator(".result-name")).to_have_text("Dropped lighthouse")
        listed = httpx.get(f"{library.url}/documents", params={"limit": 100}).json()
        ids = [doc["id"] for doc in listed["documents"]]
        assert "dropped lighthouse.txt" in ids and len(ids) == 24
        expect(panel.locator("#doc-count")).to_have_text("(24)")
        # a file named like markup is listed by its name, as text: nothing in it runs
        assert tab.page.locator("#library img, #library script").count() == 0
        assert tab.page.evaluate("() => window.__xss") is None
    finally:
        tab.close()


def test_upload_refused_for_every_file_names_each_reason(browser: Browser, library: Library, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "junk.pdf").write_bytes(b"%PDF-1.4 junk")
    tab = Chat(browser, library.url)
    try:
        panel = _open_panel(tab)
        panel.get_by_label("Files to upload").set_input_files([tmp_path / "empty.txt", tmp_path / "junk.pdf"])
        results = panel.locator(".upload-result")
        expect(results).to_have_count(2)
        expect(results.locator(".result-status")).to_have_text(["Failed", "Failed"])
        expect(results.filter(has_text="empty.txt").locator(".result-reason")).not_to_be_empty()
        expect(results.filter(has_text="junk.pdf").locator(".result-reason")).not_to_be_empty()
        expect(panel.locator("#doc-count")).to_have_text("(22)")
    finally:
        tab.close()


def test_upload_over_a_folders_name_says_it_is_taken(browser: Browser, library: Library, tmp_path: Path) -> None:
    """A 409 (the name is a folder's) reads as what it is, with the server's reason, not as a server error."""
    (library.settings.seeds_dir / "minutes.txt").mkdir()
    (library.settings.seeds_dir / "minutes.txt" / "kept.txt").write_text("Kept.", encoding="utf-8")
    (tmp_path / "minutes.txt").write_text("The board met on Monday.", encoding="utf-8")
    tab = Chat(browser, library.url)
    try:
        panel = _open_panel(tab)
        panel.get_by_label("Files to upload").set_input_files([tmp_path / "minutes.txt"])
        result = panel.locator(".upload-result")
        expect(result.locator(".result-status")).to_have_text("Failed")
        expect(result.locator(".result-reason")).to_contain_text("Already taken: ")
        expect(result.locator(".result-reason")).not_to_contain_text("Server error")
        assert (library.settings.seeds_dir / "minutes.txt" / "kept.txt").read_text(encoding="utf-8") == "Kept."
    finally:
        tab.close()


def test_documents_panel_pages_and_deletes_after_confirmation(browser: Browser, library: Library) -> None:
    tab = Chat(browser, library.url)
    try:
        panel = _open_panel(tab)
        rows = panel.locator("#doc-list .doc")
        expect(rows).to_have_count(20)
        expect(panel.locator("#doc-range")).to_have_text("1–20 of 22")
        expect(panel.get_by_role("button", name="Previous")).to_be_disabled()
        first_page = rows.locator(".doc-id").all_text_contents()
        panel.get_by_role("button", name="Next").click()
        expect(panel.locator("#doc-range")).to_have_text("21–22 of 22")
        expect(rows).to_have_count(2)
        assert not set(rows.locator(".doc-id").all_text_contents()) & set(first_page)
        listed = httpx.get(f"{library.url}/documents", params={"offset": 20, "limit": 20}).json()["documents"]
        expect(rows.locator(".doc-id")).to_have_text([doc["id"] for doc in listed])
        panel.get_by_role("button", name="Previous").click()
        expect(panel.locator("#doc-range")).to_have_text("1–20 of 22")

        row = rows.filter(has=tab.page.locator(".doc-id", has_text="bakery.txt"))
        expect(row.locator(".doc-facts")).to_contain_text(f"{len(TINY['bakery.txt'])} bytes")
        row.get_by_role("button", name="Delete").click()
        confirm = tab.page.get_by_role("dialog", name="Delete this document?")
        expect(confirm).to_contain_text("bakery.txt")
        confirm.get_by_role("button", name="Cancel").click()  # cancelled: nothing happens
        expect(confirm).to_be_hidden()
        assert httpx.get(f"{library.url}/documents/bakery.txt").status_code == 200

        row.get_by_role("button", name="Delete").click()
        confirm.get_by_role("button", name="Delete", exact=True).click()
        expect(panel.locator("#doc-count")).to_have_text("(21)")
        expect(rows.filter(has=tab.page.locator(".doc-id", has_text="bakery.txt"))).to_have_count(0)
        expect(tab.page.locator("#corpus")).to_contain_text("Answering from 21 documents")
        assert httpx.get(f"{library.url}/documents/bakery.txt").status_code == 404
        assert not (library.settings.seeds_dir / "bakery.txt").exists()
    finally:
        tab.close()


def test_citation_shows_its_page(browser: Browser, library: Library, tmp_path: Path) -> None:
    pages = [
        "The ferry timetable changes every spring and autumn.",
        "The night ferry to Valdoria leaves at eleven from pier four.",
        "Tickets are sold on board and at the harbour office.",
    ]
    (tmp_path / "ferry guide.pdf").write_bytes(text_pdf_pages(pages))
    tab = Chat(browser, library.url)
    try:
        panel = _open_panel(tab)
        panel.get_by_label("Files to upload").set_input_files(tmp_path / "ferry guide.pdf")
        expect(panel.locator(".upload-result .result-status")).to_have_text("Indexed")
        tab.page.keyboard.press("Escape")
        answer = tab.ask("when does the night ferry to Valdoria leave?")
        first = answer.locator(".citation").first
        expect(first.locator("mark")).to_contain_text("leaves at eleven")
        expect(first.locator(".page")).to_have_text("p. 2")
        harbour = tab.ask(HARBOUR_QUESTION).locator(".citation").first
        expect(harbour.locator(".doc-id")).to_have_text("harbour.txt")
        expect(harbour.locator(".page")).to_have_count(0)  # a text file has no pages
    finally:
        tab.close()


def test_deep_link_opens_the_document_at_the_span(browser: Browser, web_server: LiveServer) -> None:
    cited = httpx.post(f"{web_server.url}/ask", json={"question": ARMS_QUESTION, "top_k": 1}).json()["citations"][0]
    span = cited["highlight"]
    tab = Chat(browser, f"{web_server.url}/#doc={cited['document']}&start={span['start']}&end={span['end']}")
    try:
        viewer = tab.page.get_by_role("dialog", name="Us japan security talks")
        expect(viewer).to_be_visible()
        expect(viewer.locator("mark#cited-span")).to_have_text(ARMS_ANSWER)
        tab.page.keyboard.press("Escape")
        expect(viewer).to_be_hidden()
        # closing leaves the plain page, so a reload opens no document; the dialog's close event clears the
        # address a moment after the dialog hides, so wait on the address rather than read it once
        expect(tab.page).not_to_have_url(re.compile("#doc="))

        # a link followed while the page is open (hashchange): an id with a folder, a space and '&', encoded
        museum = httpx.post(
            f"{web_server.url}/ask", json={"question": "how many fountains are in the museum garden?", "top_k": 1}
        ).json()["citations"][0]
        assert museum["document"] == XSS_HTML
        doc = "/".join(quote(part) for part in XSS_HTML.split("/"))
        start, end = museum["highlight"]["start"], museum["highlight"]["end"]
        tab.page.goto(f"{web_server.url}/#doc={doc}&start={start}&end={end}")
        mark = tab.page.locator("#viewer mark#cited-span")
        expect(mark).to_have_text(museum["highlight"]["text"])
        expect(tab.page.locator("#viewer-title")).to_have_text(f"Escaped {IMG} notes")

        tab.page.goto(f"{web_server.url}/#doc=missing.txt&start=0&end=5")
        expect(tab.page.locator("#viewer-body")).to_contain_text("no document with id")
    finally:
        tab.close()


FESTIVAL = "lantern festival.txt"
FESTIVAL_QUESTION = "when is the lantern festival of Valdoria held?"
FESTIVAL_ANSWER = "The lantern festival of Valdoria is held every year on the ninth of March."
# an emoji and a CJK Extension B character (two UTF-16 units each, one code point) before the cited passage and
# inside it, before the answering sentence
FESTIVAL_TEXT = (
    "Notes from the old quarter 🎉 of Valdoria, where the 𠀋 sign hangs over the baker's door. "
    "The quarter has narrow lanes 🚲 and a market on Saturdays. Its church 𠀋 bell was cast in 1702. "
    "The town hall keeps 📜 the records of every guild, and the ferry 🚢 leaves from the south pier. "
    "Gardens line the river, and the old mill 𠀋 grinds flour for the bakeries of the lower town.\n\n"
    "Lanterns 🏮 hang over the 𠀋 bridge for a whole week. " + FESTIVAL_ANSWER + " Tea 🍵 is served free.\n"
)


def _astral(text: str) -> int:
    return sum(ord(c) > 0xFFFF for c in text)


def test_marks_stay_on_their_sentence_after_emoji_and_cjk_extension_b(browser: Browser, library: Library) -> None:
    """The API counts code points, the page's strings UTF-16 units: in the chat, the viewer and a Slack deep link
    the mark is the answering sentence, not a span shifted by one unit for each emoji before it."""
    uploaded = httpx.post(f"{library.url}/documents", files=[("file", (FESTIVAL, FESTIVAL_TEXT.encode()))])
    assert uploaded.status_code == 201, uploaded.text
    cited = httpx.post(f"{library.url}/ask", json={"question": FESTIVAL_QUESTION, "top_k": 1}).json()["citations"][0]
    assert cited["document"] == FESTIVAL and cited["highlight"]["text"] == FESTIVAL_ANSWER
    assert _astral(FESTIVAL_TEXT[: cited["start"]]) and _astral(
        FESTIVAL_TEXT[cited["start"] : cited["highlight"]["start"]]
    )
    tab = Chat(browser, library.url)
    try:
        first = tab.ask(FESTIVAL_QUESTION).locator(".citation").first
        expect(first.locator("mark")).to_have_text(FESTIVAL_ANSWER)
        expect(first.locator(".passage")).to_contain_text("Lanterns 🏮 hang over the 𠀋 bridge")
        first.get_by_role("button", name="Open document").click()
        expect(tab.page.locator("#viewer mark#cited-span")).to_have_text(FESTIVAL_ANSWER)
        expect(tab.page.locator("#viewer .cited-passage")).to_have_text(cited["text"])
        expect(tab.page.locator("#viewer .viewer-changed")).to_have_count(0)  # the text was found to hold it
    finally:
        tab.close()

    span = Span(**cited["highlight"])
    link = document_link(library.url, Citation(**{**cited, "highlight": span}))  # as a Slack reply builds it
    assert link is not None and f"start={span.start}&end={span.end}" in link
    linked = Chat(browser, link)
    try:
        expect(linked.page.locator("#viewer mark#cited-span")).to_have_text(FESTIVAL_ANSWER)
    finally:
        linked.close()


def test_document_cache_is_invalidated_by_a_reindex(browser: Browser, library: Library) -> None:
    tab = Chat(browser, library.url)
    try:
        first = tab.ask(HARBOUR_QUESTION).locator(".citation").first
        expect(first.locator("mark")).to_have_text(TINY_ANSWER)
        first.get_by_role("button", name="Open document").click()
        expect(tab.page.locator("#cited-span")).to_have_text(TINY_ANSWER)  # the old text, now cached
        tab.page.keyboard.press("Escape")

        # the file gains a first paragraph: after the re-index every offset in it has moved
        harbour = library.settings.seeds_dir / "harbour.txt"
        new_text = "Valdoria's port was founded in 1850 by fishermen from the north coast.\n\n" + TINY["harbour.txt"]
        harbour.write_text(new_text, encoding="utf-8")
        runs = httpx.get(f"{library.url}/admin/reindex").json()["runs"]
        assert httpx.post(f"{library.url}/admin/reindex").status_code == 202
        _wait_for_reindex(library.url, runs + 1)

        second = tab.ask(HARBOUR_QUESTION).locator(".citation").first
        expect(second.locator("mark")).to_have_text(TINY_ANSWER)
        second.get_by_role("button", name="Open document").click()
        expect(tab.page.locator("#cited-span")).to_have_text(TINY_ANSWER)
        assert tab.page.locator("#viewer-body").text_content() == new_text
    finally:
        tab.close()


def _wait_for_reindex(url: str, runs: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/admin/reindex").json()
        if status["runs"] >= runs and not status["in_progress"]:
            assert status["last_error"] is None, status["last_error"]
            return
        time.sleep(0.1)
    raise AssertionError(f"no re-index finished within {timeout}s")


def test_small_talk_names_the_documents_and_lists_no_sources(browser: Browser, web_server: LiveServer) -> None:
    titles = [doc["title"] for doc in httpx.get(f"{web_server.url}/documents", params={"limit": 3}).json()["documents"]]
    tab = Chat(browser, web_server.url)
    try:
        hello = tab.ask("hello, who are you?")
        expect(hello.locator(".small-talk")).to_have_text(f"Ask me about the 3 documents: {', '.join(titles)}")
        expect(hello.locator(".citation")).to_have_count(0)
        expect(hello.locator(".no-answer")).to_have_count(0)
        privet = tab.ask("Какая погода завтра?")
        expect(privet.locator(".small-talk")).to_have_text(f"Спросите меня о документах (3): {', '.join(titles)}")
        expect(privet.locator(".citation")).to_have_count(0)
        thai = tab.ask("วันนี้อากาศเป็นยังไง")  # Thai script: Thai, whatever the browser's language
        expect(thai.locator(".small-talk")).to_have_text(f"ถามฉันเกี่ยวกับเอกสาร (3): {', '.join(titles)}")
        hindi = tab.ask("आज मौसम कैसा है?")  # Devanagari writes several languages, and this browser reads English
        expect(hindi.locator(".small-talk")).to_have_text(f"Ask me about the 3 documents: {', '.join(titles)}")
    finally:
        tab.close()


class HeldEmbedder:
    """The real e5 model, except that embedding passages waits for ``release``: a build holds there."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.encode_sparse = getattr(inner, "encode_sparse", None)
        self.release = threading.Event()

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts):
        assert self.release.wait(120), "the test never released the build"
        return self.inner.encode_passages(texts)


def test_header_shows_indexing_progress_then_the_corpus(browser: Browser, tmp_path: Path, e5: Embedder) -> None:
    (tmp_path / "seeds").mkdir()
    for name, text in TINY.items():
        (tmp_path / "seeds" / name).write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5")
    embedder = HeldEmbedder(e5)
    app = create_app(settings, answerer=Answerer(embedder, None), index_on_start=True)  # a first build, held
    try:
        with LiveServer(app) as server:
            tab = Chat(browser, server.url)
            try:
                expect(tab.page.locator("#corpus")).to_have_text(
                    "Building the first index: answers start when it is ready"
                )
                indexing = tab.page.locator("#indexing")
                expect(indexing).to_be_visible()
                # files done of files to do, and the file at hand (the build counts a file once it is read)
                expect(indexing).to_contain_text(re.compile(r"Indexing [0-2] of 2 files · (harbour|bakery)\.txt"))
                embedder.release.set()
                expect(tab.page.locator("#corpus")).to_have_text("Answering from 2 documents · 2 passages")
                expect(indexing).to_be_hidden()
            finally:
                tab.close()
    finally:
        embedder.release.set()


def test_a_low_confidence_answer_reads_possibly_with_its_passages(
    browser: Browser, web_settings: Settings, web_index, default_embedder, web_answerer: Answerer
) -> None:
    # the seed is one document: its single cut on the top score decides, and an answer barely above it is unsure
    score = web_answerer.ask(JAPAN_QUESTION).citations[0].score
    unsure = Answerer(default_embedder, web_index, min_score=score - 0.02)
    assert unsure.ask(JAPAN_QUESTION).confidence == "low"
    with LiveServer(create_app(web_settings, answerer=unsure)) as server:
        tab = Chat(browser, server.url)
        try:
            answer = tab.ask(JAPAN_QUESTION)
            expect(answer).to_have_class(re.compile(r"\bis-low-confidence\b"))
            expect(answer.locator(".answer-text .possibly")).to_contain_text("Possibly:")
            expect(answer.locator(".answer-text")).to_contain_text(JAPAN_ANSWER)
            expect(answer.locator(".citation .passage")).to_have_count(5)
            expect(answer.locator(".citation .passage").first).to_be_visible()
            expect(answer.locator(".citation").first.locator("mark")).to_contain_text(JAPAN_ANSWER)
            expect(tab.page.locator("#announcer")).to_contain_text(re.compile(rf"^Possibly: .*{JAPAN_ANSWER}"))
        finally:
            tab.close()


# ------------------------------------------------------------------------------------------------ accessibility

AXE = Axe()  # axe-core, bundled by axe-playwright-python
LIGHTHOUSE_QUESTION = "what colour is the harbour lighthouse?"


def _no_axe_violations(page: Page, state: str) -> None:
    """axe-core's WCAG 2.x A/AA rules and best practices over the whole page as it stands."""
    violations = AXE.run(page).response["violations"]
    found = [f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']]}" for v in violations]
    assert not found, f"axe-core, {state}: {found}"


def test_every_state_of_the_page_passes_axe(chat: Chat) -> None:
    _no_axe_violations(chat.page, "empty page")
    chat.ask(JAPAN_QUESTION)
    _no_axe_violations(chat.page, "an answer shown")
    chat.ask(LIGHTHOUSE_QUESTION)
    _no_axe_violations(chat.page, "two answers")  # the second card repeats no landmark's name

    chat.answers().first.get_by_role("button", name="Open document").first.click()
    expect(chat.page.locator("#viewer mark#cited-span")).to_be_visible()
    _no_axe_violations(chat.page, "viewer open")
    chat.page.keyboard.press("Escape")

    chat.page.get_by_role("button", name="Documents", exact=True).click()
    expect(chat.page.locator("#doc-list .doc")).to_have_count(3)
    _no_axe_violations(chat.page, "Documents dialog open")
    chat.page.keyboard.press("Escape")

    held = []
    chat.page.route(
        "**/ask", lambda route: held.append(route)
    )  # a server that does not answer: the pending card and its Cancel
    chat.input.fill(JAPAN_QUESTION)
    chat.input.press("Enter")
    expect(chat.page.get_by_role("button", name="Cancel")).to_be_visible()
    _no_axe_violations(chat.page, "a question pending")
    chat.page.get_by_role("button", name="Cancel").click()
    chat.page.unroute("**/ask")

    chat.ask("x" * 2001)  # the server's real 422
    expect(chat.answers().last.get_by_role("alert")).to_contain_text("The question was not accepted")
    _no_axe_violations(chat.page, "an error shown")


def test_answers_and_passages_are_tagged_with_their_language(chat: Chat, web_server: LiveServer) -> None:
    """A Russian passage read by an English voice is noise: each carries the language the API identified."""
    cited = {}
    for question in (JAPAN_QUESTION, LIGHTHOUSE_QUESTION):
        body = httpx.post(f"{web_server.url}/ask", json={"question": question, "top_k": 5}).json()
        cited[question] = [citation["language"] for citation in body["citations"]]
    assert cited[JAPAN_QUESTION][0] == "ru" and cited[LIGHTHOUSE_QUESTION][0] == "en"

    russian = chat.ask(JAPAN_QUESTION)
    english = chat.ask(LIGHTHOUSE_QUESTION)
    expect(russian.locator(".answer-text span[lang]")).to_have_attribute("lang", "ru")
    expect(english.locator(".answer-text span[lang]")).to_have_attribute("lang", "en")
    for answer, question in ((russian, JAPAN_QUESTION), (english, LIGHTHOUSE_QUESTION)):
        passages = answer.locator(".passage")
        expect(passages).to_have_count(len(cited[question]))
        assert [passages.nth(n).get_attribute("lang") for n in range(len(cited[question]))] == cited[question]
    expect(chat.page.locator("#announcer span[lang='en']")).to_contain_text("red and white")  # heard in English

    russian.locator(".citation").first.get_by_role("button", name="Open document").click()
    expect(chat.page.locator("#viewer .cited-passage")).to_have_attribute("lang", "ru")


def _focused_id(page: Page) -> str:
    return page.evaluate("() => document.activeElement.id || document.activeElement.tagName")


def _tab_to(page: Page, name: str, *, back: bool = False, limit: int = 80) -> None:
    """Press Tab (Shift+Tab with ``back``) until the focused element's accessible name is ``name``."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        label = page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.getAttribute('aria-label') || e.textContent || '').trim(); }"
        )
        if label == name:
            return
    raise AssertionError(f"{name!r} is not reachable with {'Shift+' if back else ''}Tab")


def test_the_page_works_by_keyboard_alone(chat: Chat) -> None:
    page = chat.page
    expect(chat.input).to_be_focused()  # the page opens ready to type
    page.keyboard.type(JAPAN_QUESTION)
    _tab_to(page, "Send")
    page.keyboard.press("Enter")  # Send, by keyboard: the button is disabled while it works
    expect(chat.answers()).to_have_count(1)
    expect(chat.answers().first.locator(".answer-text")).to_contain_text(JAPAN_ANSWER)
    expect(chat.input).to_be_focused()  # not <body>: the next question can be typed at once

    source = "Open document Us japan security talks, at citation 1"
    _tab_to(page, source, back=True)
    page.keyboard.press("Enter")
    viewer = page.get_by_role("dialog", name="Us japan security talks")
    expect(viewer).to_be_visible()
    expect(viewer.locator("mark#cited-span")).to_be_visible()
    assert viewer.evaluate("(d, id) => d.contains(document.getElementById(id))", _focused_id(page))
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(page.get_by_role("button", name=source)).to_be_focused()

    _tab_to(page, "Documents")
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Documents")
    expect(panel).to_be_visible()
    expect(panel.locator("#doc-list .doc")).to_have_count(3)
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Documents", exact=True)).to_be_focused()


def test_a_hung_server_can_be_cancelled_and_the_header_says_so(chat: Chat) -> None:
    page = chat.page
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url) if r.url.endswith("/ask") else None)
    held = []
    page.route("**/ask", lambda route: held.append(route))  # the request reaches a server that never answers
    chat.input.fill(JAPAN_QUESTION)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg.pending")).to_contain_text("Searching the documents")
    expect(chat.input).to_be_focused()  # not <body>, though Send is now disabled
    corpus = page.locator("#corpus")
    expect(corpus).to_have_attribute("data-state", "slow")  # no longer green while the question hangs
    expect(corpus).to_have_text("The server is slow to answer: Cancel stops waiting")

    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".msg")).to_have_count(0)  # the question and its pending card are gone
    expect(chat.input).to_have_value(JAPAN_QUESTION)  # back in the box, to edit or send again
    expect(chat.input).to_be_focused()
    expect(page.locator("#announcer")).to_contain_text("Cancelled")
    expect(corpus).to_have_attribute("data-state", "ok")
    expect(page.locator("#send")).to_be_enabled()
    assert len(held) == 1
    expect(page.locator("#welcome")).to_be_visible()

    chat.input.press("Enter")  # sent again, and Escape in the box stops it too
    expect(page.locator(".msg.pending")).to_be_visible()
    chat.input.press("Escape")
    expect(page.locator(".msg")).to_have_count(0)
    assert len(held) == 2
    page.unroute("**/ask")
    answer = chat.ask(JAPAN_QUESTION)  # the server answers again: the page was not left busy
    expect(answer.locator(".answer-text")).to_contain_text(JAPAN_ANSWER)
    assert len(failed) == 2  # both requests were aborted, not left running


# ------------------------------------------------------------------------------------------------ collections

TEAM_FILES = {
    "harbour.txt": TINY["harbour.txt"],  # default
    "hr/harbour staff.txt": "New harbour staff in Valdoria train for two weeks with the pilot boats before duty.",
    "hr/leave.txt": "Every employee has twenty-five days of paid leave a year.",
    "eng/deploy.txt": "Deploys to the harbour booking service run every Tuesday after the tests pass.",
}


@pytest.fixture()
def teams(tmp_path: Path, e5: Embedder) -> Iterator[Library]:
    """Three collections (default, hr, eng): the first folder under seeds/ names a document's collection."""
    (tmp_path / "seeds").mkdir()
    for name, text in TEAM_FILES.items():
        (tmp_path / "seeds" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "seeds" / name).write_text(text, encoding="utf-8")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index", embedder="e5")
    report, data = build_index(settings, embedder=e5)
    assert not report.failed and data is not None
    with LiveServer(create_app(settings, answerer=Answerer(e5, data))) as server:
        yield Library(server, settings)


def test_questions_go_to_the_collections_picked(browser: Browser, teams: Library) -> None:
    tab = Chat(browser, teams.url)
    try:
        picker = tab.page.get_by_role("button", name="Ask in: all 3 collections")
        expect(picker).to_have_attribute("aria-expanded", "false")
        everywhere = tab.ask(HARBOUR_QUESTION)
        assert "collections" not in tab.asks[-1].post_data_json  # all by default: the server's own default
        expect(everywhere.locator(".citation").first.locator(".doc-id")).to_have_text("harbour.txt")
        expect(everywhere.locator(".citation").first.locator(".collection")).to_have_text("Collection default")

        picker.click()
        choices = tab.page.get_by_role("group", name="Collections to ask")
        expect(choices.get_by_role("checkbox")).to_have_count(3)
        expect(choices.get_by_label("hr (2 documents)")).to_be_checked()
        choices.get_by_label("default (1 document)").uncheck()
        choices.get_by_label("eng (1 document)").uncheck()
        expect(tab.page.get_by_role("button", name="Ask in: hr")).to_be_visible()
        choices.get_by_label("hr (2 documents)").click()  # the last one stays: a question is asked somewhere
        expect(choices.get_by_label("hr (2 documents)")).to_be_checked()
        choices.get_by_label("hr (2 documents)").press("Escape")
        expect(choices).to_be_hidden()
        expect(tab.page.get_by_role("button", name="Ask in: hr")).to_be_focused()

        only_hr = tab.ask(HARBOUR_QUESTION)
        assert tab.asks[-1].post_data_json["collections"] == ["hr"]
        expect(only_hr.locator(".citation")).not_to_have_count(0)
        for doc_id in only_hr.locator(".citation .doc-id").all_text_contents():
            assert doc_id.startswith("hr/"), doc_id  # nothing from default or eng
        expect(only_hr.locator(".citation .collection")).to_have_text(
            ["Collection hr"] * only_hr.locator(".citation").count()
        )
        expect(only_hr.locator(".citation").first.locator("mark")).to_contain_text("train for two weeks")
    finally:
        tab.close()


def test_an_upload_lands_in_the_collection_chosen(browser: Browser, teams: Library, tmp_path: Path) -> None:
    (tmp_path / "rota.txt").write_text("The night rota for the harbour cranes is posted on Fridays.", encoding="utf-8")
    tab = Chat(browser, teams.url)
    try:
        panel = _open_panel(tab)
        target = panel.get_by_label("Add to collection")
        expect(target.locator("option")).to_have_text(["default", "eng", "hr"])  # every one this caller may write
        target.select_option("eng")
        panel.get_by_label("Files to upload").set_input_files(tmp_path / "rota.txt")
        expect(panel.locator(".upload-result .result-status")).to_have_text("Indexed")
        expect(panel.locator("#library-announcer")).to_have_text("1 file indexed.")
        listed = httpx.get(f"{teams.url}/documents", params={"collection": "eng"}).json()["documents"]
        assert "eng/rota.txt" in [doc["id"] for doc in listed]  # not in default, where a plain upload goes
        row = panel.locator("#doc-list .doc").filter(has=tab.page.locator(".doc-id", has_text="eng/rota.txt"))
        expect(row.locator(".doc-facts")).to_contain_text("in eng")
        tab.page.keyboard.press("Escape")
        expect(tab.page.get_by_role("button", name="Ask in: all 3 collections")).to_be_visible()
        tab.page.get_by_role("button", name="Ask in: all 3 collections").click()
        expect(tab.page.get_by_label("eng (2 documents)")).to_be_checked()  # the counts follow the upload
    finally:
        tab.close()


def test_a_key_that_writes_nowhere_cannot_upload(browser: Browser, teams: Library) -> None:
    """What GET /collections says is writable decides the upload's choices (intercepted: a read-only key)."""
    tab = Chat(browser, teams.url)
    try:
        readonly = {"collections": [{"name": n, "documents": 1, "writable": False} for n in ("eng", "hr")]}
        tab.page.route("**/collections", lambda route: route.fulfill(json=readonly))
        tab.page.reload()
        expect(tab.page.get_by_role("button", name="Ask in: all 2 collections")).to_be_visible()
        panel = _open_panel(tab)
        expect(panel.get_by_role("button", name="Choose files…")).to_be_disabled()
        expect(panel).to_contain_text("Your key may read these collections but add to none of them.")
        expect(panel.get_by_label("Add to collection")).to_be_hidden()
    finally:
        tab.close()


def test_a_server_without_collections_shows_no_picker(chat: Chat) -> None:
    chat.page.route("**/collections", lambda route: route.fulfill(status=404, json={"detail": "Not Found"}))
    chat.page.reload()
    expect(chat.page.locator("#corpus")).to_have_attribute("data-state", "ok")
    answer = chat.ask(JAPAN_QUESTION)
    expect(answer.locator(".answer-text")).to_contain_text(JAPAN_ANSWER)
    expect(chat.page.locator("#scope")).to_be_hidden()
    assert "collections" not in chat.asks[-1].post_data_json
    panel = _open_panel(chat)
    expect(panel.get_by_role("button", name="Choose files…")).to_be_enabled()
    expect(panel.get_by_label("Add to collection")).to_be_hidden()
