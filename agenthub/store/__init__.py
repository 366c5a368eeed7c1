"""Persistence: the schema, the aiopg pool helper and one query module per entity."""
