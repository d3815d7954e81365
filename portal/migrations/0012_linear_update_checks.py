"""The two checks every UPDATE of packages runs (was a package renamed? did a source
change?) compare the statement's old and new rows by position in arrays sorted by id,
instead of joining the two transition tables.

PostgreSQL estimates a transition table at the size it had when PL/pgSQL planned the
statement, and keeps that plan for the session: planned for a one-row update, the join
stayed a nested loop for every later update. When nothing was renamed (the usual case,
with nothing to stop the search early) that is n x n comparisons: 1,254 rows took 0.3 to
0.45 s per check; an import updates every package three or four times (family and
reverse-dependency recounts, tag links), so these checks were about a third of a fresh
import, and one UPDATE of 12,000 packages took about a minute
(``tests/integration/test_derived_data.py``). Sorting both sides is n log n whatever the
plan. An UPDATE cannot change ``id`` through the ORM; if raw SQL does, every row of the
statement is treated as changed (a recount too many, never one too few).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION portal_recount_families_after_updates() RETURNS trigger AS $$
DECLARE
    old_ids bigint[];
    new_ids bigint[];
    old_sources text[];
    new_sources text[];
    ids_moved boolean;  -- compared once, not once per row of the statement
BEGIN
    SELECT array_agg(id ORDER BY id), array_agg(source ORDER BY id)
        INTO old_ids, old_sources FROM old_rows;
    SELECT array_agg(id ORDER BY id), array_agg(source ORDER BY id)
        INTO new_ids, new_sources FROM new_rows;
    ids_moved := old_ids IS DISTINCT FROM new_ids;
    -- Most updates (the recount's own among them) change no source: nothing to do.
    IF NOT ids_moved AND old_sources IS NOT DISTINCT FROM new_sources THEN
        RETURN NULL;
    END IF;
    PERFORM portal_recount_source_families(ARRAY(
        SELECT s FROM unnest(old_sources, new_sources) AS u(o, n), LATERAL (VALUES (o), (n)) v(s)
        WHERE (ids_moved OR o IS DISTINCT FROM n) AND s <> ''
        GROUP BY s
    ));
    UPDATE portal_package p SET source_family_size = 1
    FROM new_rows n
    WHERE p.id = n.id AND n.source = '' AND p.source_family_size <> 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION portal_relink_dependencies_of_renamed_packages() RETURNS trigger AS $$
DECLARE
    old_ids bigint[];
    new_ids bigint[];
    old_names text[];
    new_names text[];
    renamed_ids bigint[];
    renamed_to text[];
    ids_moved boolean;
BEGIN
    SELECT array_agg(id ORDER BY id), array_agg(name ORDER BY id)
        INTO old_ids, old_names FROM old_rows;
    SELECT array_agg(id ORDER BY id), array_agg(name ORDER BY id)
        INTO new_ids, new_names FROM new_rows;
    ids_moved := old_ids IS DISTINCT FROM new_ids;
    -- Most package updates rename nothing: leave the dependency table alone then.
    IF NOT ids_moved AND old_names IS NOT DISTINCT FROM new_names THEN
        RETURN NULL;
    END IF;
    IF ids_moved THEN  -- ids changed (raw SQL): every row counts
        renamed_ids := old_ids || new_ids;
        renamed_to := new_names;
    ELSE
        SELECT array_agg(i), array_agg(n) INTO renamed_ids, renamed_to
        FROM unnest(new_ids, old_names, new_names) AS u(i, o, n)
        WHERE o <> n;
    END IF;
    UPDATE portal_dependency d
    SET target_id = (SELECT p.id FROM portal_package p WHERE p.name = d.target_name)
    WHERE d.target_id = ANY(renamed_ids) OR d.target_name = ANY(renamed_to);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql SET enable_seqscan = off;
"""

# 0006's and 0009's versions, as they were.
BACKWARD = """
CREATE OR REPLACE FUNCTION portal_recount_families_after_updates() RETURNS trigger AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE n.source <> o.source
    ) THEN
        RETURN NULL;
    END IF;
    PERFORM portal_recount_source_families(ARRAY(
        SELECT o.source FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE n.source <> o.source AND o.source <> ''
        UNION
        SELECT n.source FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE n.source <> o.source AND n.source <> ''
    ));
    UPDATE portal_package p SET source_family_size = 1
    FROM new_rows n
    WHERE p.id = n.id AND n.source = '' AND p.source_family_size <> 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION portal_relink_dependencies_of_renamed_packages() RETURNS trigger AS $$
BEGIN
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
"""


class Migration(migrations.Migration):
    dependencies = [("portal", "0011_catalog_values_search_can_serve")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
