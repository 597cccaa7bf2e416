"""A real browser against `escalations demo --serve`: headless Chromium driven by Selenium.

Chromium and chromedriver come from Debian (`make test` installs them when missing). Without
them these tests fail rather than skip, so CI can never pass without having run them.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from infra.local.ports import free_port

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTEFACTS = Path(os.environ.get("TEST_ARTEFACTS", "test-artefacts")) / "screenshots"
MANAGER_TOKEN, ANALYST_TOKEN = "browser-manager-token", "browser-analyst-token"


@dataclass(frozen=True)
class Dashboard:
    url: str
    log: Path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {MANAGER_TOKEN}"}, timeout=30)


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """`escalations demo --serve` with two known tokens, up once its demo data is in the read model."""
    data = tmp_path_factory.mktemp("dashboard")
    log = data / "demo-serve.out"
    port = free_port()
    tokens = f'{{"{MANAGER_TOKEN}": "manager:mia.manager", "{ANALYST_TOKEN}": "analyst:nat.analyst"}}'
    env = {**os.environ, "ESCALATIONS_DATA_DIR": str(data), "ESCALATIONS_API_TOKENS": tokens}
    server = subprocess.Popen(
        [sys.executable, "-m", "infra", "demo", "--serve", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while "Dashboard with the demo's escalations" not in log.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`escalations demo --serve` never announced its dashboard; its output:\n{log.read_text()}")
            time.sleep(0.2)
        yield Dashboard(f"http://127.0.0.1:{port}", log)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            pytest.fail(f"`escalations demo --serve` did not stop on Ctrl+C within 60s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: run `make test` as root, or `apt-get install chromium chromium-driver`"
        )
    profile = tempfile.mkdtemp(prefix="ledger-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never tries to download one (sites run air-gapped).
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> webdriver.Chrome:
    """The session's browser, signed out (cookies cleared) for each test."""
    chromium.delete_all_cookies()
    return chromium


def screenshot(driver: webdriver.Chrome, name: str, width: int = 1280) -> Path:
    """The whole page at this width, saved as a test artefact; `make screenshots` also copies it into
    docs/images for the README. Chrome's own capture beyond the viewport gets the full height."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
    clip = {"x": 0, "y": 0, "width": width, "height": min(max(int(height), 400), 4000), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = ARTEFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    if target := os.environ.get("DASHBOARD_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path
