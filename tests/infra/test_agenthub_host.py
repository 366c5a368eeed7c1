"""What ansible/site.yml must leave on a host: checked from outside, after install or upgrade."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

ENV_FILE = "/etc/agenthub/agenthub.env"


def test_package_installed_at_expected_version(host: Any, expected_version: str) -> None:
    package = host.package("agenthub")
    assert package.is_installed
    if expected_version:
        assert package.version == expected_version


def test_system_user_and_group(host: Any) -> None:
    user = host.user("agenthub")
    assert user.exists
    assert user.group == "agenthub"
    assert user.uid < 1000, "a system user"
    assert user.shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    assert host.group("agenthub").exists


def test_env_file_owner_and_mode(root: Any) -> None:
    env = root.file(ENV_FILE)
    assert env.is_file
    assert env.user == "root"
    assert env.group == "agenthub"
    assert env.mode == 0o640
    settings = dict(
        line.split("=", 1)
        for line in env.content_string.splitlines()
        if line and not line.startswith("#") and "=" in line
    )
    assert len(settings["JWT_SECRET"]) >= 32
    assert settings["POSTGRES_PASSWORD"]


def test_secrets_are_root_only(root: Any) -> None:
    secrets = root.file("/etc/agenthub/secrets")
    assert secrets.is_directory
    assert (secrets.user, secrets.mode) == ("root", 0o700)
    for name in ("jwt_secret", "db_password"):
        f = root.file(f"/etc/agenthub/secrets/{name}")
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600)


def test_unit_enabled_and_active(host: Any) -> None:
    service = host.service("agenthub")
    assert service.is_enabled
    assert service.is_running


def test_port_listening(host: Any, service_port: int) -> None:
    listening = [s for s in host.socket.get_listening_sockets() if s.endswith(f":{service_port}")]
    assert listening, f"nothing listens on port {service_port}"


def test_readyz_from_here(base_url: str) -> None:
    with urllib.request.urlopen(f"{base_url}/readyz", timeout=10) as response:
        assert response.status == 200
        body = json.load(response)
    assert body["status"] == "ready"
    assert body["checks"]["db"] == "ok"


def test_journal_has_entries_and_no_errors_since_start(root: Any) -> None:
    everything = root.check_output("journalctl -u agenthub --no-pager -q -o cat")
    assert everything.strip(), "journalctl -u agenthub is empty"
    invocation = root.check_output("systemctl show -p InvocationID --value agenthub").strip()
    assert invocation
    current = root.check_output(
        "journalctl --no-pager -q -o cat _SYSTEMD_INVOCATION_ID=%s", invocation
    )
    assert current.strip(), "the running service logged nothing"
    errors = root.check_output(
        "journalctl --no-pager -q -o short-iso -p err _SYSTEMD_INVOCATION_ID=%s", invocation
    )
    assert errors.strip() == "", f"error-priority lines since the service started:\n{errors}"


def test_postgresql_active_and_loopback_only(host: Any) -> None:
    assert host.service("postgresql").is_running
    sockets = [s for s in host.socket.get_listening_sockets() if s.startswith("tcp")]
    postgres = [s for s in sockets if s.endswith(":5432")]
    assert postgres == ["tcp://127.0.0.1:5432"], postgres


# The distribution's own PostgreSQL major version, per release codename.
DISTRIBUTION_POSTGRESQL = {"bookworm": "15", "noble": "16"}


def test_postgresql_is_the_distributions_and_serves_agenthub(root: Any) -> None:
    codename = root.system_info.codename
    assert codename in DISTRIBUTION_POSTGRESQL, f"untested release {codename}"
    version = root.check_output(
        "runuser -u postgres -- psql -qAtX -d agenthub -c 'SHOW server_version_num'"
    )
    assert version[:2] == DISTRIBUTION_POSTGRESQL[codename], version


def test_migrations_at_head(root: Any) -> None:
    result = root.run("cd / && agenthub migrate --check")
    assert result.rc == 0, result.stdout + result.stderr
    assert "current=" in result.stdout


def test_admin_token_file_is_root_only(root: Any, hostvars: dict[str, Any]) -> None:
    path = hostvars.get("agenthub_admin_token_file", "/root/agenthub-admin.token")
    token = root.file(path)
    assert token.is_file
    assert (token.user, token.mode) == ("root", 0o600)
    assert token.content_string.strip().startswith("agt_")


def test_nightly_dump_timer_and_a_restorable_dump(root: Any, hostvars: dict[str, Any]) -> None:
    if not hostvars.get("agenthub_backup_enabled", True):
        return
    timer = root.service("agenthub-backup.timer")
    assert timer.is_enabled
    assert timer.is_running
    root.check_output("systemctl start agenthub-backup.service")
    backup_dir = hostvars.get("agenthub_backup_dir", "/var/backups/agenthub")
    assert (root.file(backup_dir).user, root.file(backup_dir).mode) == ("root", 0o700)
    newest = root.check_output("ls -1t %s/*.dump | head -1", backup_dir).strip()
    assert root.file(newest).mode == 0o600
    listing = root.check_output("pg_restore --list %s", newest)
    assert "TABLE DATA public messages" in listing


def test_firewall_when_enabled(root: Any, hostvars: dict[str, Any], service_port: int) -> None:
    if not hostvars.get("firewall_enabled", False):
        return
    status = root.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "deny (incoming)" in status
    rules = [line.split() for line in status.splitlines() if "ALLOW IN" in line]
    for cidr in hostvars["firewall_lan_cidrs"]:
        assert [f"{service_port}/tcp", "ALLOW", "IN", cidr] in [r[:4] for r in rules], status
    opened_ports = {r[0] for r in rules}
    assert opened_ports <= {f"{service_port}/tcp", f"{hostvars.get('firewall_ssh_port', 22)}/tcp"}
