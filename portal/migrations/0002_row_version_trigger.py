"""Bump ``portal_package.row_version`` from one global sequence on every INSERT and UPDATE.

A trigger (rather than ``Model.save()``) also covers ``QuerySet.update()``, ``bulk_create`` and
raw SQL, and a sequence gives versions that only grow across all writers, which is what
external versioning in Elasticsearch needs.
"""

from django.db import migrations

FORWARD = """
CREATE SEQUENCE IF NOT EXISTS portal_package_row_version_seq;
CREATE OR REPLACE FUNCTION portal_package_bump_row_version() RETURNS trigger AS $$
BEGIN
    NEW.row_version := nextval('portal_package_row_version_seq');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS portal_package_row_version ON portal_package;
CREATE TRIGGER portal_package_row_version
    BEFORE INSERT OR UPDATE ON portal_package
    FOR EACH ROW EXECUTE FUNCTION portal_package_bump_row_version();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS portal_package_row_version ON portal_package;
DROP FUNCTION IF EXISTS portal_package_bump_row_version();
DROP SEQUENCE IF EXISTS portal_package_row_version_seq;
"""


class Migration(migrations.Migration):
    dependencies = [("portal", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
