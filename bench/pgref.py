"""The reference every AgentHub figure is compared with, measured in the same run: PostgreSQL's
own rate of one-row inserts (``pgbench``, one 200-character row per transaction), so a result
reads as "this fraction of what the database under it can take" whatever the machine.

Used by bench/search.py and bench/compare.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import pg_params


@dataclass
class PgbenchResult:
    tps: float
    line: str  # pgbench's own "tps = ..." line

    def __str__(self) -> str:
        return self.line


def available() -> bool:
    return shutil.which("pgbench") is not None


def pgbench_reference(
    dbname: str, env: dict[str, str], clients: int = 10, seconds: int = 10
) -> PgbenchResult:
    """tx/s of ``pgbench -n -c <clients> -j 2 -T <seconds>`` inserting one 200-character row
    per transaction into a scratch table of ``dbname`` (dropped afterwards)."""
    conn = psycopg2.connect(**pg_params(dbname))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS pgbench_ref")
        cur.execute("CREATE TABLE pgbench_ref (id bigserial PRIMARY KEY, body text NOT NULL)")
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
            script.write("INSERT INTO pgbench_ref (body) VALUES (repeat('x', 200));\n")
            script.flush()
            params = pg_params(dbname)
            run = subprocess.run(
                [
                    "pgbench",
                    "-n",
                    "-c",
                    str(clients),
                    "-j",
                    "2",
                    "-T",
                    str(seconds),
                    "-f",
                    script.name,
                    "-h",
                    params["host"],
                    "-p",
                    params["port"],
                    "-U",
                    params["user"],
                    dbname,
                ],
                env={**env, "PGPASSWORD": params.get("password", "")},
                capture_output=True,
                text=True,
                check=True,
            )
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS pgbench_ref")
        conn.close()
    tps = [line for line in run.stdout.splitlines() if line.startswith("tps")]
    line = tps[0] if tps else run.stdout.strip().splitlines()[-1]
    found = re.search(r"tps = ([0-9.]+)", line)
    return PgbenchResult(float(found.group(1)) if found else float("nan"), line)
