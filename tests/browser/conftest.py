"""Fixtures for the dashboard's tests: a running dashboard and headless Chromium.

``settings`` (a topic prefix, consumer group and Redis namespace unique to the test,
cleaned up after it) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import redis
from aiohttp import web

from bench._common import delete_keys
from streams.config import Settings
from streams.dashboard.app import DashboardConfig, build_app
from tests.browser.helpers import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def admin(settings: Settings) -> Iterator[redis.Redis]:
    """A write-capable client; removes the test's dashboard users afterwards (and its keys,
    so that a failing test leaves nothing behind even before the shared cleanup runs)."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    delete_keys(client, settings.redis_namespace)
    for user in (f"{settings.app_id}-dashboard", f"{settings.app_id}-dashboard-audit"):
        client.execute_command("ACL", "DELUSER", user)
    client.close()


class RunningDashboard:
    """The dashboard app served from a background thread on a free loopback port."""

    def __init__(self, config: DashboardConfig):
        self.config = config
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> RunningDashboard:
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the dashboard did not start within 30 s")
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        # shutdown_timeout bounds how long an open live-feed stream delays cleanup.
        self._runner = web.AppRunner(build_app(self.config), shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"


@pytest.fixture
def dashboard_config(settings: Settings) -> DashboardConfig:
    return DashboardConfig(settings=settings, operator=None)


@pytest.fixture
def dashboard(dashboard_config: DashboardConfig, admin: redis.Redis) -> Iterator[RunningDashboard]:
    running = RunningDashboard(dashboard_config).start()
    yield running
    running.stop()


@pytest.fixture(scope="package")
def chromium():
    # Playwright's sync API keeps an event loop running in this thread while it is
    # open; closing it with the browser tests lets later tests use asyncio.run.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, request: pytest.FixtureRequest):
    """A fresh page; its screenshot is saved under artifacts/browser/ whatever the outcome."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{request.node.name}-final.png", full_page=True)
    context.close()
