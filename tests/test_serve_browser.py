"""The demo end to end: the real server (uvicorn) and Debian's Chromium, headless, via Playwright.

Loads the page, uploads a picture through the file input, waits for the prediction, reads the
top-1 label and checks the Grad-CAM overlay is on the page as a decoded image. Needs the
``chromium`` apt package (.ci/run installs it) and the ``playwright`` pip package (its bundled
driver only: never ``playwright install``).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from test_serve import CLASS_COLOURS, colour_square, shared_tiny_learner

CHROMIUM = os.environ.get("SPLITSAFE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(),
        reason=f"Chromium not found at {CHROMIUM}; install it with "
        "`apt-get install -y chromium` (the CI script .ci/run does) or set SPLITSAFE_CHROMIUM",
    ),
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    """The demo served by uvicorn on 127.0.0.1 and a free port, in a background thread."""
    import uvicorn

    from serve.app import create_app

    app = create_app(shared_tiny_learner(tmp_path_factory))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 30 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()


@pytest.fixture(scope="module")
def page():
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (its driver only, no browsers)"
    )
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            browser_page = browser.new_page(viewport={"width": 1000, "height": 900})
            yield browser_page
        finally:
            browser.close()


def test_upload_shows_the_top_prediction_and_the_overlay(server_url, page, tmp_path):
    import httpx

    picture = tmp_path / "red square.png"
    picture.write_bytes(colour_square(CLASS_COLOURS["red"], size=(64, 64)))
    expected = httpx.post(
        f"{server_url}predict",
        files={"file": (picture.name, picture.read_bytes(), "image/png")},
        timeout=60,
    ).json()["predictions"]

    problems = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.goto(server_url)
    page.wait_for_selector("#model:has-text('4 classes')")  # /health answered
    page.set_input_files("#file", str(picture))
    page.wait_for_selector("#predictions li", timeout=60_000)
    page.wait_for_function(
        "() => { const img = document.getElementById('overlay');"
        " return img.complete && img.naturalWidth > 0; }",
        timeout=30_000,
    )
    if os.environ.get("SPLITSAFE_SCREENSHOT"):
        page.screenshot(path=os.environ["SPLITSAFE_SCREENSHOT"], full_page=True)

    labels = page.locator("#predictions .label").all_inner_texts()
    assert labels == [item["label"] for item in expected]
    assert page.locator("#predictions .probability").count() == 3
    overlay = page.locator("#overlay")
    assert overlay.is_visible()
    source = overlay.get_attribute("src")
    assert source.startswith("data:image/png;base64,") and len(source) > 100
    assert overlay.evaluate("img => img.naturalWidth") > 0
    assert "Done: red square.png" in page.locator("#status").inner_text()
    assert problems == []


def test_a_bad_upload_shows_the_servers_message(server_url, page, tmp_path):
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_bytes(b"these are notes, not pixels\n" * 10)
    page.goto(server_url)
    page.set_input_files("#file", str(not_a_picture))
    page.wait_for_selector("#status.error", timeout=30_000)
    message = page.locator("#status").inner_text()
    assert "notes.png" in message and "not an image" in message
    assert page.locator("#result").is_hidden()


def test_a_picture_dropped_on_the_page_is_classified(server_url, page):
    page.goto(server_url)
    page.evaluate(
        """async () => {
            const canvas = document.createElement("canvas");
            canvas.width = 40;
            canvas.height = 30;
            const context = canvas.getContext("2d");
            context.fillStyle = "#1e1ec8";
            context.fillRect(0, 0, 40, 30);
            const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
            const transfer = new DataTransfer();
            transfer.items.add(new File([blob], "dropped.png", { type: "image/png" }));
            const options = { dataTransfer: transfer, bubbles: true, cancelable: true };
            document.getElementById("drop").dispatchEvent(new DragEvent("drop", options));
        }"""
    )
    page.wait_for_selector("#status:has-text('Done: dropped.png')", timeout=60_000)
    assert page.locator("#predictions li").count() == 3
    assert page.locator("#preview-caption").inner_text() == "dropped.png"
