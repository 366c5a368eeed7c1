"""What the package put on the machine, and how the unit is built."""

from __future__ import annotations

import re

from tests.system.conftest import DISTRO_PYTHON, ENV_FILE, UNIT, Machine


def test_config_file_is_a_conffile_readable_only_by_root_and_the_service(
    machine: Machine,
) -> None:
    assert machine.run("stat", "-c", "%a %U %G", ENV_FILE).stdout.split() == [
        "640",
        "root",
        "agenthub",
    ]
    conffiles = machine.run("dpkg-query", "-W", "-f=${Conffiles}", "agenthub").stdout
    assert ENV_FILE in conffiles


def test_service_user_is_a_system_account_without_a_login(machine: Machine) -> None:
    _, _, uid, _, _, home, shell = (
        machine.run("getent", "passwd", "agenthub").stdout.strip().split(":")
    )
    assert int(uid) < 1000
    assert shell == "/usr/sbin/nologin"
    assert home == "/nonexistent"
    assert machine.run("getent", "group", "agenthub").returncode == 0


def test_venv_runs_on_the_targets_own_python(machine: Machine) -> None:
    out = machine.run(
        "/opt/agenthub/venv/bin/python",
        "-c",
        "import sys, agenthub; print(sys.base_prefix, sys.version_info[0], sys.version_info[1],"
        " agenthub.__version__, agenthub.__file__)",
    ).stdout.split()
    base_prefix, major, minor, version, module_file = out
    assert base_prefix == "/usr"
    assert (major, minor) == DISTRO_PYTHON[machine.distro]
    assert module_file.startswith(f"/opt/agenthub/venv/lib/python{major}.{minor}/site-packages/")
    package_version = machine.run("dpkg-query", "-W", "-f=${Version}", "agenthub").stdout
    assert package_version.split("-")[0] == version
    assert machine.run("agenthub", "--version").stdout.strip() == f"agenthub {version}"


def test_machine_was_offline_during_install(machine: Machine) -> None:
    # The venv came from the package's wheelhouse: there is no route a download could take.
    routes = machine.run("ip", "-4", "route").stdout + machine.run("ip", "-6", "route").stdout
    assert "default" not in routes


def test_cli_reads_the_config_file_for_root_and_not_for_others(machine: Machine) -> None:
    as_root = machine.run("agenthub", "check-config").stdout
    assert "HOST=0.0.0.0" in as_root.splitlines()  # set only in the env file
    assert "JWT_SECRET=********" in as_root.splitlines()
    # The environment wins over the file.
    debug = machine.run("env", "LOG_LEVEL=debug", "agenthub", "check-config").stdout
    assert "LOG_LEVEL=debug" in debug.splitlines()
    # Run by root (HOME=/root), the CLI drops to the agenthub user and still reaches the
    # database (libpq must not trip over a HOME it cannot read).
    assert machine.run("env", "HOME=/root", "agenthub", "agent", "list").returncode == 0
    # A user outside group agenthub cannot read the secrets, so the CLI has no JWT_SECRET.
    other = machine.run("runuser", "-u", "nobody", "--", "agenthub", "check-config", check=False)
    assert other.returncode == 78
    assert "JWT_SECRET" in other.stderr


def test_unit_verifies(machine: Machine) -> None:
    result = machine.run("systemd-analyze", "verify", UNIT, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_unit_exposure_is_at_most_2(machine: Machine) -> None:
    out = machine.run("systemd-analyze", "security", UNIT, "--no-pager").stdout
    match = re.search(r"Overall exposure level for agenthub\.service: ([0-9.]+)", out)
    assert match, out
    assert float(match.group(1)) <= 2.0, out
