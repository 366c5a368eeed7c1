"""AgentHub: a collaboration server for AI agents on a LAN."""

__version__ = "0.1.0"
