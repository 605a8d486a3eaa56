"""Schema migrations: ``NNNN_name.sqlite.sql`` and ``NNNN_name.postgresql.sql`` per version.

Plain SQL, applied in version order by :mod:`signaling.store.migrate`. A version never changes
once released (the runner checks each applied file's SHA-256); a change to the schema is a new
version with both files.
"""
