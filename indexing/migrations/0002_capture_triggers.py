"""Change capture in the database: triggers fill the outbox in the writing transaction.

* ``portal_package``: every INSERT, UPDATE and DELETE adds outbox rows, one per row, from
  statement-level triggers with transition tables (cheap for bulk writes); deletes get a
  fresh version from the row-version sequence.
* ``portal_package_tags`` (the many-to-many table): adding or removing a tag touches the
  package row, which bumps its row_version and so adds an outbox row.
* ``portal_section`` / ``portal_maintainer`` / ``portal_tag``: renaming one touches every
  package that shows it, in one set-based UPDATE (the task then indexes them in bulk batches).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION indexing_capture_package_writes() RETURNS trigger AS $$
BEGIN
    INSERT INTO indexing_outbox (object_id, version, created_at)
    SELECT id, row_version, now() FROM changed_rows;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION indexing_capture_package_deletes() RETURNS trigger AS $$
BEGIN
    INSERT INTO indexing_outbox (object_id, version, created_at)
    SELECT id, nextval('portal_package_row_version_seq'), now() FROM changed_rows;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER indexing_capture_package_inserts
    AFTER INSERT ON portal_package REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION indexing_capture_package_writes();
CREATE TRIGGER indexing_capture_package_updates
    AFTER UPDATE ON portal_package REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION indexing_capture_package_writes();
CREATE TRIGGER indexing_capture_package_deletes
    AFTER DELETE ON portal_package REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION indexing_capture_package_deletes();

CREATE OR REPLACE FUNCTION indexing_touch_packages_from_tags() RETURNS trigger AS $$
BEGIN
    UPDATE portal_package SET updated_at = now()
    WHERE id IN (SELECT package_id FROM changed_rows);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER indexing_touch_packages_from_tag_inserts
    AFTER INSERT ON portal_package_tags REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION indexing_touch_packages_from_tags();
CREATE TRIGGER indexing_touch_packages_from_tag_deletes
    AFTER DELETE ON portal_package_tags REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION indexing_touch_packages_from_tags();

CREATE OR REPLACE FUNCTION indexing_touch_packages_of_section() RETURNS trigger AS $$
BEGIN
    UPDATE portal_package SET updated_at = now() WHERE section_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER indexing_touch_packages_of_section
    AFTER UPDATE OF name ON portal_section
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION indexing_touch_packages_of_section();

CREATE OR REPLACE FUNCTION indexing_touch_packages_of_maintainer() RETURNS trigger AS $$
BEGIN
    UPDATE portal_package SET updated_at = now() WHERE maintainer_id = NEW.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER indexing_touch_packages_of_maintainer
    AFTER UPDATE OF name ON portal_maintainer
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION indexing_touch_packages_of_maintainer();

CREATE OR REPLACE FUNCTION indexing_touch_packages_of_tag() RETURNS trigger AS $$
BEGIN
    UPDATE portal_package p SET updated_at = now()
    FROM portal_package_tags t
    WHERE t.tag_id = NEW.id AND p.id = t.package_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER indexing_touch_packages_of_tag
    AFTER UPDATE OF facet, value ON portal_tag
    FOR EACH ROW WHEN (OLD.facet IS DISTINCT FROM NEW.facet OR OLD.value IS DISTINCT FROM NEW.value)
    EXECUTE FUNCTION indexing_touch_packages_of_tag();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS indexing_touch_packages_of_tag ON portal_tag;
DROP FUNCTION IF EXISTS indexing_touch_packages_of_tag();
DROP TRIGGER IF EXISTS indexing_touch_packages_of_maintainer ON portal_maintainer;
DROP FUNCTION IF EXISTS indexing_touch_packages_of_maintainer();
DROP TRIGGER IF EXISTS indexing_touch_packages_of_section ON portal_section;
DROP FUNCTION IF EXISTS indexing_touch_packages_of_section();
DROP TRIGGER IF EXISTS indexing_touch_packages_from_tag_inserts ON portal_package_tags;
DROP TRIGGER IF EXISTS indexing_touch_packages_from_tag_deletes ON portal_package_tags;
DROP FUNCTION IF EXISTS indexing_touch_packages_from_tags();
DROP TRIGGER IF EXISTS indexing_capture_package_inserts ON portal_package;
DROP TRIGGER IF EXISTS indexing_capture_package_updates ON portal_package;
DROP TRIGGER IF EXISTS indexing_capture_package_deletes ON portal_package;
DROP FUNCTION IF EXISTS indexing_capture_package_writes();
DROP FUNCTION IF EXISTS indexing_capture_package_deletes();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("indexing", "0001_initial"),
        ("portal", "0003_admin_indexes"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
