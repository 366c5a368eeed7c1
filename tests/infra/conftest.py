"""pytest-testinfra checks of a host that ansible/site.yml installed (not part of scripts/test).

    .venv/bin/pytest tests/infra --hosts=ansible://all \\
        --ansible-inventory=ansible/inventory/hosts.yml --agenthub-version=0.1.0-1

The URL checked "from the host running pytest" is http://<ansible_host>:<agenthub_port>/readyz
from the inventory, or --agenthub-url. Without --hosts every test is skipped: testinfra would
otherwise inspect the machine pytest runs on.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agenthub infra")
    group.addoption(
        "--agenthub-version",
        default=os.environ.get("AGENTHUB_EXPECTED_VERSION", ""),
        help="Debian version the agenthub package must have, e.g. 0.1.0-1 "
        "(default: $AGENTHUB_EXPECTED_VERSION; empty: any version)",
    )
    group.addoption(
        "--agenthub-url",
        default=os.environ.get("AGENTHUB_URL", ""),
        help="base URL of the service as seen from here "
        "(default: http://<ansible_host>:<agenthub_port> from the inventory)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("hosts", default=None):
        return
    skip = pytest.mark.skip(reason="tests/infra needs --hosts (e.g. ansible://all)")
    for item in items:
        if "tests/infra/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(skip)


def inventory_vars(host: Any) -> dict[str, Any]:
    """The host's inventory variables (ansible:// backend only; {} otherwise)."""
    try:
        return dict(host.ansible.get_variables())
    except RuntimeError:
        return {}


@pytest.fixture()
def hostvars(host: Any) -> dict[str, Any]:
    return inventory_vars(host)


@pytest.fixture()
def service_port(hostvars: dict[str, Any]) -> int:
    return int(hostvars.get("agenthub_port", 3000))


@pytest.fixture()
def base_url(request: pytest.FixtureRequest, host: Any, hostvars: dict[str, Any]) -> str:
    explicit = str(request.config.getoption("agenthub_url"))
    if explicit:
        return explicit.rstrip("/")
    address = hostvars.get("ansible_host") or host.backend.get_hostname()
    return f"http://{address}:{int(hostvars.get('agenthub_port', 3000))}"


@pytest.fixture()
def expected_version(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("agenthub_version"))


@pytest.fixture()
def root(host: Any) -> Iterator[Any]:
    """The same host, running commands as root (sudo when the connection user is not root)."""
    if host.user().uid == 0:
        yield host
    else:
        with host.sudo():
            yield host
