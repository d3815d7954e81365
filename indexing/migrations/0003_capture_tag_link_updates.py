"""Capture UPDATEs of the package-tag link table too (only INSERT and DELETE were captured).

Moving every link of one tag to another in one statement (a "merge tags",
``Package.tags.through.objects.filter(tag=a).update(tag=b)``) changed documents without any
outbox row, and verification by versions reported the index clean while it was wrong.
Packages on either side of the change (a link can even move to another package) are touched,
which bumps their row version and records them in the outbox.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION indexing_touch_packages_from_tag_updates() RETURNS trigger AS $$
BEGIN
    UPDATE portal_package SET updated_at = now()
    WHERE id IN (SELECT package_id FROM old_rows UNION SELECT package_id FROM changed_rows);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER indexing_touch_packages_from_tag_updates
    AFTER UPDATE ON portal_package_tags REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION indexing_touch_packages_from_tag_updates();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS indexing_touch_packages_from_tag_updates ON portal_package_tags;
DROP FUNCTION IF EXISTS indexing_touch_packages_from_tag_updates();
"""


class Migration(migrations.Migration):
    dependencies = [("indexing", "0002_capture_triggers")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
