"""Fixtures for the UI tests in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

The browser is never downloaded: Playwright launches ``executable_path=/usr/bin/chromium``. When it is
missing, or the front end is not built, the tests FAIL and say how to fix it (``make setup``).

Screenshots go to ``$PODNET_UI_SHOTS`` (scripts/ui-screenshots.sh sets docs/img) or test-output/ui/.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests import processes
from tests.e2e import labserver

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATIC = REPO / "podnet" / "ui" / "static"


class Shots:
    """Where a test's screenshots go; ``shot(page, "editor")`` writes ``ui-editor.png``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Page, name: str) -> Path:
        path = self.dir / f"ui-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="session")
def shots() -> Shots:
    return Shots(Path(os.environ.get("PODNET_UI_SHOTS") or REPO / "test-output" / "ui"))


@pytest.fixture(scope="session")
def lab_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[labserver.Server]:
    """A lab API server process (no root, no nodes): what `Load from lab` and `Apply to lab` talk to."""
    srv = labserver.start(tmp_path_factory.mktemp("ui-lab") / "api")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def flows_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flows the UI shows: a copy of examples/flows/shop.jsonl (recorded from a lab) that tests append to."""
    path = tmp_path_factory.mktemp("ui-flows") / "flows.jsonl"
    path.write_text((REPO / "examples" / "flows" / "shop.jsonl").read_text())
    return path


class UiServer:
    """``podnet ui --port 0 ARGS`` as a process on a free loopback port; ``url`` is what it printed."""

    def __init__(self, *args: str) -> None:
        if not (STATIC / "index.html").is_file():
            pytest.fail(f"the UI front end is not built ({STATIC}/index.html missing): run `make setup`")
        cmd = [sys.executable, "-m", "podnet.cli.main", "ui", "--port", "0", *args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(deadline - time.monotonic(), 0)):
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "serving http://" in line:
                self.url = line.split("serving ", 1)[1].split(" ", 1)[0]
                return
        self.stop()
        pytest.fail(f"podnet ui did not start: {''.join(seen)}")

    def stop(self) -> None:
        processes.stop(self.proc, signal.SIGINT)


@pytest.fixture(scope="session")
def ui_url(lab_api: labserver.Server, flows_file: Path) -> Iterator[str]:
    """The UI linked to the lab API server, showing the flows of ``flows_file``."""
    server = UiServer("--kubeconfig", str(lab_api.kubeconfig), "--flows-file", str(flows_file))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (make setup does)")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1500, "height": 1000},
            accept_downloads=True,
        )
        ctx.set_default_timeout(15_000)
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture
def page(browser: BrowserContext, ui_url: str) -> Iterator[Page]:
    pg = browser.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(ui_url)
    try:
        yield pg
    finally:
        pg.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
