from __future__ import annotations

from django.db import migrations

# "Search by image" is a substring match (source/destination ILIKE '%…%'), which a B-tree cannot
# serve. PostgreSQL's pg_trgm GIN index can; pg_trgm is a trusted extension since PostgreSQL 13,
# so the database owner may create it. SQLite (the embedded default) scans, which is fine there.

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS jobs_source_trgm ON jobs_syncjob USING gin (source gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS jobs_destination_trgm ON jobs_syncjob USING gin (destination gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS jobs_destination_trgm",
    "DROP INDEX IF EXISTS jobs_source_trgm",
]


def _run(statements: list[str]):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
