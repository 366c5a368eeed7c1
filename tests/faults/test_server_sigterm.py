"""SIGTERM of the server under 10 concurrent senders, then a new process on the same port.

Beyond what kill -9 must keep, a shutdown must drain: every send the server commits gets its
ack, clients see a transport loss (not a deliberate "server disconnect") and reconnect by
themselves, and the process exits 0 (docs/API.md, "Real time"; docs/RUNBOOK.md)."""

from __future__ import annotations

from tests.faults.scenarios import LoadShape, explain, run, server_sigterm
from tests.faults.server import ServerProcess


def test_sigterm_under_load_drains_and_clients_reconnect(fault_server: ServerProcess) -> None:
    report = run(server_sigterm(fault_server, LoadShape()))

    assert all(sock.disconnects for sock in report.sockets), explain(report, fault_server)
    assert not report.problems(), explain(report, fault_server)
