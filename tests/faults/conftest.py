"""Fixtures for the fault scenarios: a server of their own on a fixed port (they kill it),
and a throwaway PostgreSQL cluster (they stop it; the machine's cluster is never touched)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.pgcluster import ThrowawayCluster
from tests.faults.server import LOAD_SETTINGS, ServerProcess, cli


@pytest.fixture
def fault_server(database: Any, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server on the session's test database, for the scenarios that kill or stop it."""
    server = ServerProcess(dict(database.env, **LOAD_SETTINGS), tmp_path)
    server.start()
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture
def pg_cluster() -> Iterator[ThrowawayCluster]:
    cluster = ThrowawayCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def cluster_server(pg_cluster: ThrowawayCluster, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose database lives on ``pg_cluster``."""
    pg_cluster.create_database("agenthub_faults")
    env = pg_cluster.env(
        dict(os.environ, JWT_SECRET=secrets.token_hex(32), **LOAD_SETTINGS), "agenthub_faults"
    )
    cli(env, "migrate")
    server = ServerProcess(env, tmp_path)
    server.start()
    server.wait_ready()
    yield server
    server.stop()
