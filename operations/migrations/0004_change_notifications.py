# On PostgreSQL, every change of an operation's state or progress, and every slot
# changing hands, sends a notification on the channel the change feed listens to
# (operations.feed.postgres). A trigger sends it inside the changing transaction at
# no extra round trip, and PostgreSQL delivers it when, and only if, that commits.
# Deletes (retention pruning) notify nothing. SQLite needs nothing: operations.feed.sqlite.

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION coordhub_operation_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
            OR NEW.cancel_requested IS DISTINCT FROM OLD.cancel_requested THEN
        PERFORM pg_notify('coordhub_changes', 's:' || NEW.id::text);
    ELSIF NEW.progress IS DISTINCT FROM OLD.progress OR NEW.message IS DISTINCT FROM OLD.message THEN
        PERFORM pg_notify('coordhub_changes', 'p:' || NEW.id::text);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER coordhub_operation_changed
    AFTER INSERT OR UPDATE ON operations_operation
    FOR EACH ROW EXECUTE FUNCTION coordhub_operation_changed();

CREATE OR REPLACE FUNCTION coordhub_slot_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('coordhub_changes', 'slot');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER coordhub_slot_changed
    AFTER UPDATE ON operations_slot
    FOR EACH ROW WHEN (OLD.operation_id IS DISTINCT FROM NEW.operation_id)
    EXECUTE FUNCTION coordhub_slot_changed();
"""

DROP = """
DROP TRIGGER IF EXISTS coordhub_slot_changed ON operations_slot;
DROP FUNCTION IF EXISTS coordhub_slot_changed();
DROP TRIGGER IF EXISTS coordhub_operation_changed ON operations_operation;
DROP FUNCTION IF EXISTS coordhub_operation_changed();
"""


def on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("operations", "0003_history_indexes")]

    operations = [migrations.RunPython(on_postgresql(CREATE), on_postgresql(DROP))]
