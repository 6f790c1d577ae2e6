# The detail page: what an operation retries, its last messages with their times and a
# failed kind's traceback; and the per-minute refusal counts the charts draw.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0005_client_history_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="operation",
            name="message_history",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="operation",
            name="retry_of",
            field=models.ForeignKey(
                blank=True,
                help_text="The operation this one retries.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="retries",
                to="operations.operation",
            ),
        ),
        migrations.AddField(
            model_name="operation",
            name="traceback",
            field=models.TextField(blank=True),
        ),
        migrations.CreateModel(
            name="RefusalCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("minute", models.DateTimeField(help_text="The minute's start.")),
                ("reason", models.CharField(max_length=32)),
                ("count", models.PositiveIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("minute", "reason"), name="refusal_count_minute_reason"
                    )
                ],
            },
        ),
    ]
