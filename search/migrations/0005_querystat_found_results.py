"""``QueryStat.found_results``: searches known to have found something (unfiltered, with
hits), which alone make a query an autocomplete suggestion. Rows counted before keep what
was assumed of them then (every search that did not find nothing)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("search", "0004_name_and_position_validators")]

    operations = [
        migrations.AddField(
            model_name="querystat",
            name="found_results",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunSQL(
            "UPDATE search_querystat SET found_results = searches - zero_results",
            migrations.RunSQL.noop,
        ),
    ]
