"""The dev scripts' settings: the caller's environment wins over .agenthub-dev/env, and each
clone gets its own database and role. Run on a throwaway copy: no apt, no root, no database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENTHUB = Path(sys.executable).parent / "agenthub"


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone with scripts/ and a dev setup: an env file, and .venv/bin/agenthub."""
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    state = tmp_path / ".agenthub-dev"
    state.mkdir()
    (state / "env").write_text(
        "JWT_SECRET=" + "s" * 40 + "\n"
        "POSTGRES_DB=agenthub_clone\n"
        "HOST=127.0.0.1\n"
        "PORT=3999\n"
        "# a comment\n"
        "LOG_LEVEL=warning\n"
    )
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "agenthub").symlink_to(AGENTHUB)
    return tmp_path


def settings_seen(clone: Path, **environ: str) -> dict[str, str]:
    """What `scripts/agenthub check-config` reports, run with only ``environ`` set."""
    env = {"PATH": os.environ["PATH"], **environ}
    out = subprocess.run(
        [clone / "scripts" / "agenthub", "check-config"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def test_the_env_file_fills_in_what_the_caller_did_not_set(clone):
    seen = settings_seen(clone)
    assert seen["PORT"] == "3999"
    assert seen["POSTGRES_DB"] == "agenthub_clone"
    assert seen["LOG_LEVEL"] == "warning"


def test_the_callers_environment_wins(clone):
    seen = settings_seen(clone, PORT="3001", LOG_LEVEL="debug")
    assert seen["PORT"] == "3001"
    assert seen["LOG_LEVEL"] == "debug"
    assert seen["POSTGRES_DB"] == "agenthub_clone"  # not given: from the file


def test_values_are_taken_literally(clone, tmp_path):
    marker = tmp_path / "evaluated"
    with (clone / ".agenthub-dev" / "env").open("a") as f:
        f.write(f"POSTGRES_PASSWORD=$(touch {marker})'\"x\n")
    run = '. scripts/lib/dev-env.sh; load_dev_env .agenthub-dev/env; printf %s "$POSTGRES_PASSWORD"'
    out = subprocess.run(
        ["bash", "-c", run],
        cwd=clone,
        env={"PATH": os.environ["PATH"]},  # POSTGRES_PASSWORD unset, or it would win
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert out.stdout == f"$(touch {marker})'\"x"
    assert not marker.exists()


def new_env(root: str) -> dict[str, str]:
    out = subprocess.run(
        ["bash", "-c", '. "$1/scripts/lib/dev-env.sh"; new_dev_env "$2"', "-", str(ROOT), root],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def test_each_clone_gets_its_own_database_and_role():
    one, again, other = new_env("/src/one"), new_env("/src/one"), new_env("/src/other")
    assert re.fullmatch(r"agenthub_[0-9a-f]{8}", one["POSTGRES_DB"])
    assert one["POSTGRES_USER"] == one["POSTGRES_DB"]
    assert again["POSTGRES_DB"] == one["POSTGRES_DB"]  # derived from the path alone
    assert other["POSTGRES_DB"] != one["POSTGRES_DB"]
    # Secrets are fresh each time.
    assert re.fullmatch(r"[0-9a-f]{64}", one["JWT_SECRET"])
    assert one["JWT_SECRET"] != again["JWT_SECRET"]
    assert one["POSTGRES_PASSWORD"] != again["POSTGRES_PASSWORD"]
    assert (one["HOST"], one["PORT"]) == ("127.0.0.1", "3000")


def test_the_wrapper_says_what_to_do_without_a_dev_setup(tmp_path):
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    out = subprocess.run(
        [tmp_path / "scripts" / "agenthub", "agent", "list"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 69
    assert "scripts/dev-up" in out.stderr
