"""A real headless Chromium for the memory browser's tests: Debian's ``chromium`` driven by its
``chromium-driver`` through Selenium, with explicit paths so that Selenium Manager never
downloads a browser or a driver (``.ci/run`` installs both from apt)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never reach the network

CHROMIUM = os.environ.get("HEADROOM_MCP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HEADROOM_MCP_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
#: How long a page may take to show what a test waits for (the first recall loads nothing new,
#: but a cold store can take seconds); a wait for a condition, never an assertion on time.
PATIENCE = 60


def start_browser() -> Any:
    """A headless Chromium at 1280×800 in light mode; skipped where chromium is not installed."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    viewport(driver, 1280, 800, dark=False)
    return driver


def viewport(driver: Any, width: int, height: int, dark: bool) -> None:
    """The page's size (CSS pixels) and ``prefers-color-scheme``, as a device would report them."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                                  "mobile": False})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme",
                                                                        "value": "dark" if dark else "light"}]})


def wait(driver: Any, condition: Callable[[Any], Any], why: str = "") -> Any:
    """Wait until ``condition(driver)`` is truthy and return it (fails after ``PATIENCE`` seconds)."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, PATIENCE).until(condition, why)


def shown(css: str) -> Callable[[Any], Any]:
    """A condition: the first element matching ``css`` is displayed (returns it)."""
    from selenium.webdriver.common.by import By

    def check(driver: Any) -> Any:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found and found[0].is_displayed() else None
    return check


def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``HEADROOM_MCP_UI_SCREENSHOTS`` if set (to look at them), else a temp dir."""
    chosen = os.environ.get("HEADROOM_MCP_UI_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
