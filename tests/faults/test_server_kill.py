"""kill -9 of the server under 10 concurrent senders, then a new process on the same port."""

from __future__ import annotations

from tests.faults.scenarios import LoadShape, explain, run, server_kill
from tests.faults.server import ServerProcess


def test_kill_9_under_load_loses_no_acked_message(fault_server: ServerProcess) -> None:
    report = run(server_kill(fault_server, LoadShape()))

    # The fault hit the load (else the scenario proves nothing).
    assert all(sock.disconnects for sock in report.sockets), explain(report, fault_server)
    # Every REST poster met the dead server (a reset mid-request, or a refused connection):
    # whether one was mid-request at the kill itself is a race, so that is not required.
    assert all(sender.failure_reasons for sender in report.senders if sender.transport == "rest"), (
        explain(report, fault_server)
    )
    # Acked ⇒ stored, once, densely numbered; /readyz 200 again; every client back by itself.
    assert not report.problems(), explain(report, fault_server)
