"""Dependency links and reverse-dependency counts, kept by the database for every writer.

They were kept by Python (model signals and the importer's recount), which missed every
write through ``QuerySet.update()``, ``bulk_create`` or raw SQL, and lost updates under
concurrency: two transactions adding a dependency on the same package each recounted in
their own snapshot, and the second, after waiting for the first one's row lock, compared
its stale count with the committed one and left the total one short. Now:

* **The target follows the name**: a dependency's ``target_id`` is set from its
  ``target_name`` when it is inserted or its name changes (row trigger), and when a package
  is created or renamed, the dependencies naming it are linked or unlinked (statement
  trigger). A raw ``DELETE`` of a package unlinks the dependencies pointing at it.
* **Counts are recounted, never patched**: every INSERT, UPDATE and DELETE on the dependency
  table recounts the packages whose dependents changed, with
  ``portal_recount_reverse_dependencies``. It locks those rows first (in id order) and counts
  in a *new* statement, whose READ COMMITTED snapshot sees every transaction that committed
  while it waited for the locks: so concurrent writers serialise on the counted row and the
  last one counts everybody's dependencies. A recount that changes a count is an UPDATE of
  the package, which the indexing capture triggers turn into an index write.

These functions touch a few rows through indexed columns (a package's id, a dependency's
target or name), but they often run inside one long transaction that is filling the very
tables they read (an import), where the planner's statistics say nothing or are stale (an
aborted import's dead rows recorded as an empty table). There the planner chose sequential
scans inside nested loops, and one batch of an import took minutes. So they run with
``enable_seqscan = off``: an index plan is right for them whatever the statistics say.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION portal_recount_reverse_dependencies(ids bigint[]) RETURNS void AS $$
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM portal_package WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
    UPDATE portal_package p
    SET reverse_dependency_count = c.depends, reverse_recommends_count = c.recommends
    FROM (
        SELECT i.id,
               (SELECT count(*) FROM portal_dependency d
                WHERE d.target_id = i.id AND d.kind = 'depends') AS depends,
               (SELECT count(*) FROM portal_dependency d
                WHERE d.target_id = i.id AND d.kind = 'recommends') AS recommends
        FROM unnest(ids) AS i(id)
    ) c
    WHERE p.id = c.id
      AND (p.reverse_dependency_count, p.reverse_recommends_count)
          IS DISTINCT FROM (c.depends, c.recommends);
END;
$$ LANGUAGE plpgsql SET enable_seqscan = off;

-- The target always follows the name.
CREATE OR REPLACE FUNCTION portal_dependency_link_target() RETURNS trigger AS $$
BEGIN
    NEW.target_id := (SELECT id FROM portal_package WHERE name = NEW.target_name);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER portal_dependency_link_target
    BEFORE INSERT OR UPDATE OF target_name ON portal_dependency
    FOR EACH ROW EXECUTE FUNCTION portal_dependency_link_target();

CREATE OR REPLACE FUNCTION portal_recount_after_dependency_inserts() RETURNS trigger AS $$
BEGIN
    PERFORM portal_recount_reverse_dependencies(
        ARRAY(SELECT DISTINCT target_id FROM new_rows WHERE target_id IS NOT NULL)
    );
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION portal_recount_after_dependency_updates() RETURNS trigger AS $$
BEGIN
    PERFORM portal_recount_reverse_dependencies(ARRAY(
        SELECT target_id FROM old_rows WHERE target_id IS NOT NULL
        UNION
        SELECT target_id FROM new_rows WHERE target_id IS NOT NULL
    ));
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION portal_recount_after_dependency_deletes() RETURNS trigger AS $$
BEGIN
    PERFORM portal_recount_reverse_dependencies(
        ARRAY(SELECT DISTINCT target_id FROM old_rows WHERE target_id IS NOT NULL)
    );
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER portal_recount_after_dependency_inserts
    AFTER INSERT ON portal_dependency REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portal_recount_after_dependency_inserts();
CREATE TRIGGER portal_recount_after_dependency_updates
    AFTER UPDATE ON portal_dependency REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portal_recount_after_dependency_updates();
CREATE TRIGGER portal_recount_after_dependency_deletes
    AFTER DELETE ON portal_dependency REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portal_recount_after_dependency_deletes();

-- A package that appears (or takes a new name) is the target of the dependencies naming it;
-- one that is renamed stops being the target of those naming its old name.
CREATE OR REPLACE FUNCTION portal_link_dependencies_of_new_packages() RETURNS trigger AS $$
BEGIN
    UPDATE portal_dependency d SET target_id = n.id
    FROM new_rows n
    WHERE d.target_name = n.name AND d.target_id IS DISTINCT FROM n.id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql SET enable_seqscan = off;

CREATE OR REPLACE FUNCTION portal_relink_dependencies_of_renamed_packages() RETURNS trigger AS $$
BEGIN
    -- Most package updates rename nothing: leave the dependency table alone then.
    IF NOT EXISTS (
        SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE n.name <> o.name
    ) THEN
        RETURN NULL;
    END IF;
    UPDATE portal_dependency d
    SET target_id = (SELECT p.id FROM portal_package p WHERE p.name = d.target_name)
    WHERE d.target_id IN (
            SELECT o.id FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE n.name <> o.name
        )
       OR d.target_name IN (
            SELECT n.name FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE n.name <> o.name
        );
    RETURN NULL;
END;
$$ LANGUAGE plpgsql SET enable_seqscan = off;

CREATE OR REPLACE FUNCTION portal_unlink_dependencies_of_deleted_packages() RETURNS trigger AS $$
BEGIN
    UPDATE portal_dependency SET target_id = NULL
    WHERE target_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql SET enable_seqscan = off;

CREATE TRIGGER portal_link_dependencies_of_new_packages
    AFTER INSERT ON portal_package REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portal_link_dependencies_of_new_packages();
CREATE TRIGGER portal_relink_dependencies_of_renamed_packages
    AFTER UPDATE ON portal_package REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portal_relink_dependencies_of_renamed_packages();
CREATE TRIGGER portal_unlink_dependencies_of_deleted_packages
    AFTER DELETE ON portal_package REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portal_unlink_dependencies_of_deleted_packages();

-- Existing data: every target from its name, every count from the dependencies.
UPDATE portal_dependency d SET target_id = p.id
FROM portal_package p WHERE p.name = d.target_name AND d.target_id IS DISTINCT FROM p.id;
SELECT portal_recount_reverse_dependencies(ARRAY(SELECT id FROM portal_package));
"""

BACKWARD = """
DROP TRIGGER IF EXISTS portal_unlink_dependencies_of_deleted_packages ON portal_package;
DROP TRIGGER IF EXISTS portal_relink_dependencies_of_renamed_packages ON portal_package;
DROP TRIGGER IF EXISTS portal_link_dependencies_of_new_packages ON portal_package;
DROP FUNCTION IF EXISTS portal_unlink_dependencies_of_deleted_packages();
DROP FUNCTION IF EXISTS portal_relink_dependencies_of_renamed_packages();
DROP FUNCTION IF EXISTS portal_link_dependencies_of_new_packages();
DROP TRIGGER IF EXISTS portal_recount_after_dependency_deletes ON portal_dependency;
DROP TRIGGER IF EXISTS portal_recount_after_dependency_updates ON portal_dependency;
DROP TRIGGER IF EXISTS portal_recount_after_dependency_inserts ON portal_dependency;
DROP FUNCTION IF EXISTS portal_recount_after_dependency_deletes();
DROP FUNCTION IF EXISTS portal_recount_after_dependency_updates();
DROP FUNCTION IF EXISTS portal_recount_after_dependency_inserts();
DROP TRIGGER IF EXISTS portal_dependency_link_target ON portal_dependency;
DROP FUNCTION IF EXISTS portal_dependency_link_target();
DROP FUNCTION IF EXISTS portal_recount_reverse_dependencies(bigint[]);
"""


class Migration(migrations.Migration):
    dependencies = [("portal", "0005_reverse_recommends_count")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
