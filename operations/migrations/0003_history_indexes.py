# Indexes that match the history and estimate queries: the active operations by status
# in created order (replacing the index on status alone), and a kind's recent completions.

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0002_api_keys"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="operation",
            index=models.Index(
                fields=["kind", "status", "finished_at"], name="operation_kind_recent_idx"
            ),
        ),
        migrations.RemoveIndex(model_name="operation", name="operations__status_ad168c_idx"),
        migrations.AddIndex(
            model_name="operation",
            index=models.Index(fields=["status", "created_at"], name="operation_status_recent_idx"),
        ),
    ]
