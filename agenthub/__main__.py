"""``python -m agenthub``: the console script, as the supervisor starts its workers."""

from agenthub.cli import main

raise SystemExit(main())
