"""Hashed names for the console's files, computed at start from their contents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agenthub.console import STATIC_DIR, ConsoleAssets


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


INDEX = (
    '<link rel="stylesheet" href="/console/app.css">'
    '<script type="module" src="/console/app.js"></script>'
)


def test_imports_and_index_references_are_rewritten_to_hashed_names(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "index.html": INDEX,
            "app.css": "body{}",
            "app.js": 'import { a } from "./lib.js";\nimport { io } from "./vendor/io.js";\n',
            "lib.js": "export const a = 1;",
            "vendor/io.js": "export const io = 2;",
        },
    )
    assets = ConsoleAssets(root)
    app = assets.assets[assets.hashed["app.js"]].body.decode()
    assert f'from "./{assets.hashed["lib.js"]}"' in app
    assert f'from "./{assets.hashed["vendor/io.js"]}"' in app  # served flat
    assert re.fullmatch(r"io\.[0-9a-f]{12}\.js", assets.hashed["vendor/io.js"])
    index = assets.index.body.decode()
    assert f'"/console/{assets.hashed["app.js"]}"' in index
    assert f'"/console/{assets.hashed["app.css"]}"' in index


def test_a_changed_dependency_changes_the_name_of_its_importer(tmp_path: Path) -> None:
    files = {"index.html": INDEX, "app.css": "", "app.js": 'import "./lib.js";', "lib.js": "1"}
    before = ConsoleAssets(_write(tmp_path / "a", files)).hashed
    after = ConsoleAssets(_write(tmp_path / "b", {**files, "lib.js": "2"})).hashed
    assert before["lib.js"] != after["lib.js"]
    assert before["app.js"] != after["app.js"]
    assert before["app.css"] == after["app.css"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"index.html": INDEX, "app.css": "", "app.js": 'import "./gone.js";'},
            "not in the console",
        ),
        ({"index.html": INDEX, "app.css": ""}, "index.html refers to /console/app.js"),
        (
            {"index.html": "", "app.js": 'import "./b.js";', "b.js": 'import "./app.js";'},
            "cycle",
        ),
    ],
)
def test_a_broken_reference_stops_the_start(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ConsoleAssets(_write(tmp_path, files))


def test_the_shipped_console_loads_with_its_vendored_socketio_client() -> None:
    assets = ConsoleAssets(STATIC_DIR)
    assert "vendor/socket.io.esm.min.js" in assets.hashed
    socket_js = assets.assets[assets.hashed["socket.js"]].body.decode()
    assert assets.hashed["vendor/socket.io.esm.min.js"] in socket_js
    vendored = (STATIC_DIR / "vendor" / "VENDORED.md").read_text()
    assert "4.8.4" in vendored and "MIT" in vendored
    assert (STATIC_DIR / "vendor" / "LICENSE").read_text().startswith("The MIT License")
