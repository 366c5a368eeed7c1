"""The web console: ``/`` (index.html, never cached) and its assets under
``/console/<name>.<hash>.<ext>`` (cached for a year: the name changes with the content).
Files come from ``agenthub.console``, read once at start. docs/CONSOLE.md."""

from __future__ import annotations

from typing import Any

from agenthub.api.base import BaseHandler
from agenthub.console import IMMUTABLE, Asset, ConsoleAssets
from agenthub.errors import NotFound


class _ConsoleHandler(BaseHandler):
    auth_required = False
    # Not charged to the anonymous rate limit: the files come from memory and cost nothing,
    # and one page load fetches ten of them (a person reloading twice would otherwise spend
    # the budget their sign-in needs). A foreign Origin is still refused.
    rate_limited = False

    def initialize(self, *args: Any, assets: ConsoleAssets | None = None, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        assert assets is not None, "console handlers need the assets (routes.url_specs)"
        self.assets = assets

    def send_asset(self, asset: Asset, cache_control: str) -> None:
        self.set_status(200)
        self.set_header("Content-Type", asset.content_type)
        self.set_header("Cache-Control", cache_control)
        body = asset.body
        if asset.gzipped is not None:
            self.set_header("Vary", "Origin, Accept-Encoding")
            if "gzip" in self.request.headers.get("Accept-Encoding", ""):
                self.set_header("Content-Encoding", "gzip")
                body = asset.gzipped
        self.finish(body)


class ConsoleIndexHandler(_ConsoleHandler):
    route = "/"

    async def get(self) -> None:
        # no-cache (not no-store): the browser may keep it but asks each time, so a new
        # release's asset names are picked up on the next visit.
        self.send_asset(self.assets.index, "no-cache")


class ConsoleAssetHandler(_ConsoleHandler):
    route = "/console/{asset}"

    async def get(self, name: str) -> None:
        asset = self.assets.assets.get(name)
        if asset is None:
            raise NotFound("no such console file", {"asset": ["unknown (names carry a hash)"]})
        self.send_asset(asset, IMMUTABLE)
