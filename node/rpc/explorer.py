"""The block explorer every node serves at ``/``: static pages over the node's own RPC.

How it works: the explorer is three static files in ``node/rpc/explorer_static/`` (HTML,
JavaScript, CSS; no build step, nothing fetched from another host). The page talks to
the node that served it, same origin: JSON-RPC over ``POST /rpc`` for reads and one
websocket at ``/ws`` subscribed to ``newBlocks`` for the live list of blocks. It never
holds a key and never sends a transaction. ``add_explorer_routes(app)`` mounts
``GET /`` (the page, also at ``GET /explorer`` for links written that way) and
``GET /explorer/<file>`` (its assets) on the node's RPC application; only files that exist in the static directory when the node starts are
served, by exact name, so no request path ever reaches the file system. Every
response carries a Content-Security-Policy that allows this origin only, so even a
hostile string stored on chain (a contract name, an event field) cannot load or run
anything from elsewhere: the scripts also only ever insert text, never HTML.
"""

from __future__ import annotations

import os

from aiohttp import web

from ledger.errors import ChainError

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "explorer_static")
#: URL prefix of the explorer's assets.
ASSET_PREFIX = "/explorer/"
#: Largest asset served (the files are small; a bigger one is a packaging mistake).
MAX_ASSET_BYTES = 512 * 1024
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
#: Same-origin only: scripts, styles, fetches and the websocket all go to the node itself.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache",
           "Referrer-Policy": "no-referrer"}


class ExplorerAssetError(ChainError, RuntimeError):
    """The explorer's static files are missing or unusable (a broken installation)."""


def load_assets(directory: str = STATIC_DIR) -> dict[str, tuple[bytes, str]]:
    """Every servable file of ``directory``: name -> (bytes, content type)."""
    if not os.path.isdir(directory):
        raise ExplorerAssetError(f"explorer assets expected in {directory}, found no such directory; "
                                 "reinstall shopchain (pip install -e .)")
    assets: dict[str, tuple[bytes, str]] = {}
    for name in sorted(os.listdir(directory)):
        content_type = CONTENT_TYPES.get(os.path.splitext(name)[1])
        path = os.path.join(directory, name)
        if content_type is None or not os.path.isfile(path):
            continue
        if os.path.getsize(path) > MAX_ASSET_BYTES:
            raise ExplorerAssetError(f"explorer asset {path} is larger than {MAX_ASSET_BYTES} bytes")
        with open(path, "rb") as fh:
            assets[name] = (fh.read(), content_type)
    if "index.html" not in assets:
        raise ExplorerAssetError(f"explorer page {directory}/index.html expected, found only {sorted(assets)}")
    return assets


def add_explorer_routes(app: web.Application, directory: str = STATIC_DIR) -> None:
    """Serve the explorer at ``/`` and its assets under ``/explorer/`` on ``app``."""
    assets = load_assets(directory)

    def respond(name: str) -> web.Response:
        body, content_type = assets[name]
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=HEADERS)

    async def index(request: web.Request) -> web.Response:
        return respond("index.html")

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in assets:
            raise web.HTTPNotFound(text=f"no explorer asset {name!r}; the explorer has {sorted(assets)}")
        return respond(name)

    app.router.add_get("/", index)
    app.router.add_get(ASSET_PREFIX.rstrip("/"), index)   # /explorer#/order/1 works like /#/order/1
    app.router.add_get(ASSET_PREFIX + "{name}", asset)
