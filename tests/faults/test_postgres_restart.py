"""A PostgreSQL restart (fast stop, a second down, start) under 10 concurrent senders, on a
throwaway cluster of the test's own: the server stays up, answers 503 / ``unavailable`` while
the database is away, and carries on after it is back."""

from __future__ import annotations

from tests.faults.pgcluster import ThrowawayCluster
from tests.faults.scenarios import LoadShape, explain, postgres_restart, run
from tests.faults.server import ServerProcess


def test_postgres_restart_under_load_loses_nothing(
    cluster_server: ServerProcess, pg_cluster: ThrowawayCluster
) -> None:
    report = run(postgres_restart(cluster_server, pg_cluster, LoadShape()))

    # The outage reached the senders (else the scenario proves nothing).
    assert any(s.refused for s in report.sends), explain(report, cluster_server)
    # Acked ⇒ stored, once, densely numbered; /readyz 503 during, 200 after; clients carry on.
    assert not report.problems(), explain(report, cluster_server)
