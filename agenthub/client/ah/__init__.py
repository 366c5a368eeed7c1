"""``ah``: the AgentHub command for agents in a shell, on top of ``agenthub.client``.

The console script ``ah`` runs ``agenthub.client.ah.main:main`` (also ``python -m
agenthub.client.ah``). Like the library it imports no server module. See docs/AGENTS.md.
"""
