"""The page in a real browser: Debian's chromium driven by Playwright, never a download.

The server runs on a free loopback port in a thread over a tiny VIP5 and a SASRec run
(two models side by side); the test picks a user, waits for both recommendation grids,
checks that their photos really decoded, opens an explanation, and saves a screenshot.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from serve_runs import CONFIGS, STEPS, VIP5

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def talking_vip5(trained, tmp_path_factory):
    """A tiny VIP5 trained 30 steps on explanations only, at a high learning rate: enough
    for greedy decoding to emit words (repetitive ones; the plumbing is what is tested)."""
    from mfmrec.training.config import load_run_config
    from mfmrec.training.runs import load_run, train

    data, _, _ = trained
    out = tmp_path_factory.mktemp("browser") / "vip5"
    extra = ["train.max_steps=30", "train.lr=1e-2", "train.warmup_ratio=0",
             "model.tasks=[explanation]"]
    train(load_run_config(CONFIGS / "vip5-demo.yaml", VIP5 + STEPS + extra), data, out,
          quiet=True)
    return load_run(out)


@pytest.fixture(scope="module")
def server(runs, talking_vip5):
    import uvicorn

    from mfmrec.serve import create_app

    port = _free_port()
    app = create_app([runs[0], talking_vip5])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.mark.slow
def test_the_page_shows_photos_side_by_side_and_an_explanation(server, dataset, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    uid = dataset.user_ids[3]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server + "/")
            page.wait_for_selector("#simulated:not([hidden])")
            page.click(f'[data-user="{uid}"]')
            for key in ("sasrec", "vip5"):
                page.wait_for_selector(f'[data-model="{key}"] .grid button.card img')
            page.wait_for_function("""() => [...document.querySelectorAll('#models img')]
                .every(img => img.complete)""")
            widths = page.eval_on_selector_all("#models img, #history img",
                                               "imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) >= 2 * 10 and all(w > 0 for w in widths), widths
            assert page.inner_text("#simulated") == "SIMULATED"
            page.click('[data-model="vip5"] .grid button.card')
            page.wait_for_selector("#explanations .explanation q")
            assert "vip5" in page.inner_text("#explanations .by").lower()
            assert page.inner_text("#explanations q").strip()  # generated words
            page.screenshot(path=str(tmp_path / "explanation.png"))
            page.click("#drawer-close")
            page.click('[data-model="sasrec"] .grid button.card')
            page.wait_for_selector("#explanations .note")
            assert "does not generate explanations" in page.inner_text("#explanations")
            page.click("#drawer-close")
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
    assert (tmp_path / "page.png").stat().st_size > 10_000
