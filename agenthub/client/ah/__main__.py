"""``python -m agenthub.client.ah``: the ``ah`` command."""

import sys

from agenthub.client.ah.main import main

sys.exit(main())
