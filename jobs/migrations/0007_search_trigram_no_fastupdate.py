from __future__ import annotations

from django.db import migrations

# GIN's fastupdate queues new entries in a pending list that every search reads linearly until
# (auto)vacuum merges it. In the API benchmark ~2,900 new jobs made a staff search's count
# 60 ms instead of 7 ms, and 20 clients searching queued behind it. Job inserts are few and
# searches are what users wait for, so new jobs go into the trigram indexes at once.
# ALTER INDEX does not flush the entries already pending: gin_clean_pending_list does.

INDEXES = ["jobs_source_upper_trgm", "jobs_destination_upper_trgm"]


def _fastupdate(on: bool):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for index in INDEXES:
            schema_editor.execute(f"ALTER INDEX {index} SET (fastupdate = {'on' if on else 'off'})")
            if not on:
                schema_editor.execute(f"SELECT gin_clean_pending_list('{index}'::regclass)")

    return run


class Migration(migrations.Migration):
    dependencies = [("jobs", "0006_status_newest_index")]

    operations = [migrations.RunPython(_fastupdate(on=False), _fastupdate(on=True))]
