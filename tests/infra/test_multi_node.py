"""What ansible/site.yml leaves on a multi-node install (tests/infra/run-multi): each host is
checked for the parts its inventory groups give it (agenthub_db, agenthub_redis, agenthub_app,
agenthub_balancer). Hosts outside those groups skip every test."""

from __future__ import annotations

import os
import ssl
import urllib.request
from typing import Any

import pytest

ENV_FILE = "/etc/agenthub/agenthub.env"


def parts(hostvars: dict[str, Any]) -> set[str]:
    groups = set(hostvars.get("group_names", []))
    return {p for p in ("db", "redis", "app", "balancer") if f"agenthub_{p}" in groups}


def needs(hostvars: dict[str, Any], part: str) -> None:
    if part not in parts(hostvars):
        pytest.skip(f"not an agenthub_{part} host")


def env_settings(root: Any) -> dict[str, str]:
    content = root.file(ENV_FILE).content_string
    return dict(
        line.split("=", 1)
        for line in content.splitlines()
        if line and not line.startswith("#") and "=" in line
    )


def private_address(hostvars: dict[str, Any]) -> str:
    return str(hostvars.get("agenthub_private_address") or hostvars["ansible_host"])


def listening(host: Any, port: int) -> set[str]:
    return {
        s.rsplit(":", 1)[0].removeprefix("tcp://")
        for s in host.socket.get_listening_sockets()
        if s.startswith("tcp") and s.endswith(f":{port}")
    }


# --- Redis ------------------------------------------------------------------------------------


def test_redis_private_address_and_loopback_only(host: Any, hostvars: dict[str, Any]) -> None:
    needs(hostvars, "redis")
    assert host.service("redis-server").is_running
    assert host.service("redis-server").is_enabled
    assert listening(host, 6379) == {"127.0.0.1", private_address(hostvars)}


def test_redis_password_kept_root_only_and_required(root: Any, hostvars: dict[str, Any]) -> None:
    needs(hostvars, "redis")
    secret = root.file("/etc/redis/agenthub.password")
    assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600)
    conf = root.file("/etc/redis/redis.conf")
    assert (conf.user, conf.mode) == ("redis", 0o640)
    assert "protected-mode yes" in conf.content_string
    anonymous = root.run("redis-cli -h %s PING", private_address(hostvars))
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    password = secret.content_string.strip()
    authed = root.check_output(
        "REDISCLI_AUTH=%s redis-cli --no-auth-warning CONFIG GET save", password
    )
    assert authed.split() == ["save"], f"persistence is on: {authed!r}"


# --- PostgreSQL -------------------------------------------------------------------------------


def test_postgresql_serves_the_app_hosts_only(root: Any, hostvars: dict[str, Any]) -> None:
    needs(hostvars, "db")
    assert listening(root, 5432) == {"127.0.0.1", private_address(hostvars)}
    hba = root.check_output("cat /etc/postgresql/*/main/pg_hba.conf")
    lines = [line.split() for line in hba.splitlines() if line.startswith("host agenthub")]
    assert lines, hba
    assert all(line[-1] == "scram-sha-256" and line[3].endswith("/32") for line in lines)


# --- App hosts --------------------------------------------------------------------------------


def test_app_env_names_redis_workers_and_backend_port(root: Any, hostvars: dict[str, Any]) -> None:
    needs(hostvars, "app")
    settings = env_settings(root)
    workers = int(hostvars.get("agenthub_workers", 1))
    assert settings["HOST"] == private_address(hostvars)
    assert settings["PORT"] == "3101"
    assert settings.get("WORKERS", "1") == str(workers)
    assert settings["REDIS_URL"].startswith("redis://:")
    assert settings["REDIS_URL"].endswith(":6379/0")
    assert "TLS_CERT_FILE" not in settings, "behind the balancer, HAProxy terminates TLS"
    assert settings["POSTGRES_HOST"] != "127.0.0.1"
    # The balancer's X-Forwarded-For names the client (rate limits, audit) behind HAProxy.
    assert settings["TRUSTED_PROXIES"]


def test_app_every_worker_listens_on_the_private_address(
    host: Any, hostvars: dict[str, Any]
) -> None:
    needs(hostvars, "app")
    assert host.service("agenthub").is_running
    for port in range(3101, 3101 + int(hostvars.get("agenthub_workers", 1))):
        assert listening(host, port) == {private_address(hostvars)}, f"worker on port {port}"


def test_app_hosts_share_the_secrets_of_the_db_host(root: Any, hostvars: dict[str, Any]) -> None:
    needs(hostvars, "app")
    settings = env_settings(root)
    assert len(settings["JWT_SECRET"]) >= 32
    if "db" not in parts(hostvars):
        assert not root.file("/etc/agenthub/secrets").exists, "the secrets live on the db host"


# --- Balancer ---------------------------------------------------------------------------------


def test_haproxy_config_sticky_health_checked_tunnel(root: Any, hostvars: dict[str, Any]) -> None:
    needs(hostvars, "balancer")
    assert root.service("haproxy").is_running
    assert root.service("haproxy").is_enabled
    cfg = root.file("/etc/haproxy/haproxy.cfg").content_string
    for needle in (
        "cookie AH_SRV insert indirect nocache",
        "balance source",
        "uri /readyz",
        "timeout tunnel 1h",
    ):
        assert needle in cfg
    servers = [line.split() for line in cfg.splitlines() if line.strip().startswith("server ")]
    assert len(servers) >= 2 and all(s[3] == "cookie" and s[4] == s[1] for s in servers), servers
    # Every backend is up per HAProxy's own health checks, and none went down since the play
    # configured it (a check refused, e.g. /readyz answering 429, would take servers down).
    stat = root.check_output(
        "python3 -c %s",
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/haproxy/admin.sock'); "
        "s.sendall(b'show stat\\n'); print(s.makefile().read())",
    )
    lines = [line.split(",") for line in stat.splitlines() if line]
    header = lines[0]
    servers_stat = [
        dict(zip(header, row, strict=False))
        for row in lines[1:]
        if row[0] == "agenthub" and row[1] not in ("FRONTEND", "BACKEND")
    ]
    assert len(servers_stat) == len(servers), stat
    for row in servers_stat:
        assert (row["status"], row["chkdown"]) == ("UP", "0"), row
    pem = root.file("/etc/haproxy/certs/agenthub.pem")
    assert (pem.user, pem.mode) == ("root", 0o600)
    assert listening(root, 3000) and listening(root, 3443)


def test_https_through_the_balancer_with_hsts(hostvars: dict[str, Any]) -> None:
    needs(hostvars, "balancer")
    ca = os.environ.get("AGENTHUB_TLS_CA", "")
    if not ca:
        pytest.skip("AGENTHUB_TLS_CA (the CA the play printed) is not set")
    context = ssl.create_default_context(cafile=ca)
    url = f"https://{hostvars['ansible_host']}:{hostvars.get('agenthub_tls_port', 3443)}/readyz"
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        assert response.status == 200
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "AH_SRV=" in (response.headers.get("Set-Cookie") or "")


# --- Firewall ---------------------------------------------------------------------------------


def test_firewall_opens_each_port_to_its_clients_only(root: Any, hostvars: dict[str, Any]) -> None:
    if not hostvars.get("firewall_enabled", False) or not parts(hostvars):
        pytest.skip("firewall role off")
    status = root.check_output("ufw status")
    assert "Status: active" in status
    rules = {
        (r[0], r[2])
        for r in (line.split() for line in status.splitlines())
        if "ALLOW" in r and "(v6)" not in r
    }
    ports = {port for port, _ in rules}
    mine = parts(hostvars)
    assert ("3000/tcp" in ports) == ("balancer" in mine)
    assert ("3443/tcp" in ports) == ("balancer" in mine)
    assert ("5432/tcp" in ports) == ("db" in mine)
    assert ("6379/tcp" in ports) == ("redis" in mine)
    assert any(p.startswith("3101") for p in ports) == ("app" in mine)
    lan = set(hostvars["firewall_lan_cidrs"])
    for port, source in rules:
        if port in ("5432/tcp", "6379/tcp") or port.startswith("3101"):
            assert source not in lan and source != "Anywhere", (port, source)
