"""Index stores: SQLite (the embedded default) and Postgres with pgvector."""
