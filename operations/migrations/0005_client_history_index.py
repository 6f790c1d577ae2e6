# One client's operations, newest first: what the history's `client` filter
# (api.history) reads, without walking every other client's rows.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("operations", "0004_change_notifications")]

    operations = [
        migrations.AddIndex(
            model_name="operation",
            index=models.Index(
                fields=["client_key", "created_at"], name="operation_client_recent_idx"
            ),
        ),
    ]
