"""The web console's files (``static/``), read once at start and given content-hashed names.

No build step: the files are plain ES modules, CSS and HTML. What a bundler would do for
caching is done here, in memory, when the server starts: each asset is served at
``/console/<stem>.<hash>.<ext>`` (immutable, cached for a year), and every reference to
another asset is rewritten to that name first — ``from "./api.js"`` in a module,
``/console/app.css`` in index.html — so a module's hash covers the modules it imports and a
changed file changes every URL that leads to it. ``index.html`` itself is served at ``/``
and never cached.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
ASSET_PREFIX = "/console/"
IMMUTABLE = "public, max-age=31536000, immutable"

# Relative imports between the console's own modules: `from "./x.js"`, `import "./x.js"`,
# `import("./vendor/x.js")`. Every asset is served flat, at /console/<hashed file name>, so an
# import becomes "./<hashed file name>" whatever folder the file sits in here.
_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(["'])\./([\w./-]+\.js)\2""")
# Asset references in index.html.
_HTML_REF = re.compile(r"""(["'])/console/([\w./-]+)\1""")

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


# Text smaller than this is sent as is: gzip would save less than a packet.
_GZIP_MIN = 1024


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    # Compressed once, at start (the server compresses nothing per request): sent to a client
    # whose Accept-Encoding names gzip. None when not worth it.
    gzipped: bytes | None = None


def _asset(body: bytes, content_type: str) -> Asset:
    textual = content_type.startswith(("text/", "image/svg"))
    if not textual or len(body) < _GZIP_MIN:
        return Asset(body, content_type)
    packed = gzip.compress(body, compresslevel=9, mtime=0)
    return Asset(body, content_type, packed if len(packed) < len(body) else None)


class ConsoleAssets:
    """The console's files by their hashed URL name, and the rewritten index.html."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.directory = directory
        sources = {
            p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
        }
        # "app.js" -> "app.3f9c0a1b2c4d.js", "vendor/x.js" -> "x.0a1b2c3d4e5f.js"
        self.hashed: dict[str, str] = {}
        self.assets: dict[str, Asset] = {}
        for name in sources:
            if name != "index.html":
                self._hash(name, sources, ())
        index = sources.get("index.html", b"")
        html = _HTML_REF.sub(self._html_ref, index.decode("utf-8")).encode("utf-8")
        self.index = _asset(html, _TYPES[".html"])

    def url(self, name: str) -> str:
        return ASSET_PREFIX + self.hashed[name]

    def _hash(self, name: str, sources: dict[str, bytes], stack: tuple[str, ...]) -> str:
        if name in self.hashed:
            return self.hashed[name]
        if name in stack:
            raise ValueError(f"console modules import each other in a cycle: {(*stack, name)}")
        body = sources[name]
        if name.endswith(".js"):
            folder = name.rpartition("/")[0]

            def rewrite(match: re.Match[str]) -> str:
                target = f"{folder}/{match[3]}" if folder else match[3]
                if target not in sources:
                    raise ValueError(f"{name} imports {match[3]}, which is not in the console")
                new = self._hash(target, sources, (*stack, name))
                return f"{match[1]}{match[2]}./{new}{match[2]}"

            body = _IMPORT.sub(rewrite, body.decode("utf-8")).encode("utf-8")
        digest = hashlib.sha256(body).hexdigest()[:12]
        stem, dot, ext = name.rpartition("/")[2].rpartition(".")
        hashed = f"{stem}.{digest}.{ext}" if dot else f"{name}.{digest}"
        suffix = f".{ext}" if dot else ""
        content_type = _TYPES.get(suffix) or (
            mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        if hashed in self.assets:
            raise ValueError(f"two console files are served as {hashed}: rename one")
        self.hashed[name] = hashed
        self.assets[hashed] = _asset(body, content_type)
        return hashed

    def _html_ref(self, match: re.Match[str]) -> str:
        name = match[2]
        if name not in self.hashed:
            raise ValueError(f"index.html refers to /console/{name}, which is not in the console")
        return f"{match[1]}{self.url(name)}{match[1]}"
