"""The operations: one function each; the only place rules live (DESIGN §1)."""
