"""Take the README's screenshots of the web chat (docs/web-desktop.png, web-phone.png, web-documents.png).

Drives Debian's Chromium with Playwright against the real service: by default it indexes the seeds folder
(incrementally, like `qa serve`) and serves it on a free 127.0.0.1 port; `--url` points it at a running server.

    python scripts/screenshots.py                # uses ./seeds and ./index
    python scripts/screenshots.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
QUESTIONS = ["who commands US troops in Japan?", "Что Япония сделала с ограничениями на экспорт оружия?"]


@contextmanager
def local_server() -> Iterator[str]:
    """`qa serve` in a thread: index the seeds folder, then serve the API and the page on a free port."""
    import uvicorn

    from qa.answer import Answerer
    from qa.api import create_app
    from qa.config import Settings
    from qa.embedding import make_embedder
    from qa.indexer import build_index

    settings = Settings()
    embedder = make_embedder(settings.embedder, settings.device)
    _, data = build_index(settings, embedder=embedder)
    app = create_app(settings, answerer=Answerer(embedder, data, min_score=settings.min_score))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def ask(page: Page, question: str) -> None:
    answers = page.locator(".msg.assistant:not(.pending)").count()
    page.get_by_label("Your question").fill(question)
    page.keyboard.press("Enter")
    page.locator(".msg.assistant:not(.pending)").nth(answers).wait_for()


def shoot(url: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, viewport, scale, questions in [
            ("web-desktop.png", {"width": 1280, "height": 900}, 1, QUESTIONS),
            ("web-phone.png", {"width": 375, "height": 812}, 2, QUESTIONS[:1]),
        ]:
            page = browser.new_page(viewport=viewport, device_scale_factor=scale, color_scheme="light")
            page.goto(url)
            page.locator('#corpus[data-state="ok"]').wait_for()
            for question in questions:
                ask(page, question)
            page.evaluate("document.activeElement && document.activeElement.blur()")
            # the first answer at the top of the transcript, as a person would read it
            page.locator(".msg.user").first.evaluate("node => node.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            path = out / name
            page.screenshot(path=str(path))
            shots.append(path)
            if name == "web-desktop.png":  # the documents panel over the same chat
                page.get_by_role("button", name="Documents", exact=True).click()
                page.locator("#doc-list .doc").first.wait_for()
                path = out / "web-documents.png"
                page.screenshot(path=str(path))
                shots.append(path)
            page.close()
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running qa server (default: start one on the seeds folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="folder for the PNG files")
    args = parser.parse_args()
    if args.url:
        paths = shoot(args.url, args.out)
    else:
        with local_server() as url:
            paths = shoot(url, args.out)
    for path in paths:
        print(path)


if __name__ == "__main__":
    main()
