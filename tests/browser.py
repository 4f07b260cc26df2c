"""A headless Chromium for the page tests (test_report, test_explorer), and the rule for when it
is missing: skip on a developer's machine, fail under CI=true, where it must exist."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def browser_or_skip() -> tuple[str, str]:
    """Chromium and chromedriver paths; skip when missing, but fail in CI, where they must exist."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", chromedriver))
               if path is None]
    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        reason = (f"browser test needs {', '.join(missing)}: "
                  "apt-get install chromium chromium-driver")
        if in_ci():
            pytest.fail(f"{reason}. CI is set, so this test must run, not skip.")
        pytest.skip(reason)
    return chromium, chromedriver


@contextmanager
def headless_chromium(chromium: str, chromedriver: str, profile: Path) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # The network is closed: nothing may try to reach it (first-run, updates, sync, QUIC).
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,900",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # driver.get_log("browser")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        driver.set_script_timeout(30)
        yield driver
    finally:
        driver.quit()
