"""The operations: one function each; the only place rules live (ARCHITECTURE §1)."""
