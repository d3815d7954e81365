"""Keep ``source_family_size`` (how many binary packages share a source package) right for
every writer, the way migration 0006 keeps reverse-dependency counts: any INSERT, DELETE,
or change of ``source`` recounts the families it touches, locking their rows first and
counting in a new statement. A package whose family size changes is updated, so the capture
triggers reindex it (its popularity prior depends on it). A package without a source name
is its own family of one.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION portal_recount_source_families(sources text[]) RETURNS void AS $$
DECLARE
    members bigint[];
BEGIN
    IF sources IS NULL OR cardinality(sources) = 0 THEN
        RETURN;
    END IF;
    -- Every statement below is driven by the list (one index lookup per source, then per
    -- member id), never by the table: inside an import's transaction the planner may
    -- believe portal_package holds one row and join the other way round, which made a
    -- join on "source" cost O(batch x table) (4 s per 500-row batch of a retried import).
    members := ARRAY(
        SELECT p.id
        FROM (SELECT DISTINCT unnest(sources) AS source) s
        CROSS JOIN LATERAL (SELECT id FROM portal_package WHERE source = s.source) p
    );
    PERFORM 1 FROM portal_package WHERE id = ANY(members) ORDER BY id FOR UPDATE;
    UPDATE portal_package p
    SET source_family_size = c.n
    FROM (
        SELECT m.id,
               (SELECT count(*) FROM portal_package q WHERE q.source = m.source) AS n
        FROM portal_package m WHERE m.id = ANY(members)
    ) c
    WHERE p.id = c.id AND p.source_family_size <> c.n;
END;
$$ LANGUAGE plpgsql SET enable_seqscan = off;

CREATE OR REPLACE FUNCTION portal_recount_families_after_inserts() RETURNS trigger AS $$
BEGIN
    PERFORM portal_recount_source_families(
        ARRAY(SELECT DISTINCT source FROM new_rows WHERE source <> '')
    );
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION portal_recount_families_after_deletes() RETURNS trigger AS $$
BEGIN
    PERFORM portal_recount_source_families(
        ARRAY(SELECT DISTINCT source FROM old_rows WHERE source <> '')
    );
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION portal_recount_families_after_updates() RETURNS trigger AS $$
BEGIN
    -- Most updates (the recount's own among them) change no source: nothing to do.
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

CREATE TRIGGER portal_recount_families_after_inserts
    AFTER INSERT ON portal_package REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portal_recount_families_after_inserts();
CREATE TRIGGER portal_recount_families_after_deletes
    AFTER DELETE ON portal_package REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portal_recount_families_after_deletes();
CREATE TRIGGER portal_recount_families_after_updates
    AFTER UPDATE ON portal_package REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portal_recount_families_after_updates();

-- Existing data.
SELECT portal_recount_source_families(
    ARRAY(SELECT DISTINCT source FROM portal_package WHERE source <> '')
);
"""

BACKWARD = """
DROP TRIGGER IF EXISTS portal_recount_families_after_updates ON portal_package;
DROP TRIGGER IF EXISTS portal_recount_families_after_deletes ON portal_package;
DROP TRIGGER IF EXISTS portal_recount_families_after_inserts ON portal_package;
DROP FUNCTION IF EXISTS portal_recount_families_after_updates();
DROP FUNCTION IF EXISTS portal_recount_families_after_deletes();
DROP FUNCTION IF EXISTS portal_recount_families_after_inserts();
DROP FUNCTION IF EXISTS portal_recount_source_families(text[]);
"""


class Migration(migrations.Migration):
    dependencies = [("portal", "0008_source_family_size")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
