"""A real browser for the console tests: Debian's headless Chromium driven by its chromedriver (selenium).

Why selenium and not Playwright: Debian ships `chromium` and `chromium-driver` as one matched pair, and
W3C WebDriver is the protocol that pair speaks, so nothing is downloaded (Playwright's Python package
brings its own Node driver and expects its own browser builds; Debian's Chromium is not one of them).
Selenium is blocking, so every call goes through `asyncio.to_thread`: the agent under test runs in the
test's event loop and must keep running while the browser waits.

Screenshots go to `test-artifacts/console/` at the repository root (gitignored); the path is printed.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = (1280, 800)
TABLET = (820, 1180)


def browser_missing() -> str | None:
    """Why no browser test can run here (None: they can). scripts/test.sh installs both packages."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(path) is None:
            return f"{path} missing (apt-get install {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium missing (pip install -e '.[dev]')"
    return None


class Browser:
    """One headless Chromium window; async wrappers over the selenium calls the tests need."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--hide-scrollbars"):  # fmt: skip
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, url: str) -> None:
        await self._call(self.driver.get, url)

    async def text(self, css: str) -> str:
        return str(await self._call(self.driver.execute_script,
                                    "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                                    css))  # fmt: skip

    async def attr(self, css: str, name: str) -> str | None:
        value = await self._call(
            self.driver.execute_script,
            "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
            css,
            name,
        )
        return None if value is None else str(value)

    async def script(self, js: str, *args: Any) -> Any:
        return await self._call(self.driver.execute_script, js, *args)

    async def resize(self, width: int, height: int) -> None:
        await self._call(
            self.driver.execute_cdp_cmd,
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        await asyncio.sleep(0.5)  # the page reflows and the charts take their new width

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self._call(self.driver.save_screenshot, str(path))
        print(f"screenshot: {path}")
        return path

    async def console_errors(self) -> list[str]:
        logs = await self._call(self.driver.get_log, "browser")
        return [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]

    def quit(self) -> None:
        self.driver.quit()
