"""A tag's label (from Debian's tag vocabulary) is in its packages' documents as words
(``tag_words``): renaming its label reindexes them, like renaming its facet or value."""

from django.db import migrations

FORWARD = """
DROP TRIGGER IF EXISTS indexing_touch_packages_of_tag ON portal_tag;
CREATE TRIGGER indexing_touch_packages_of_tag
    AFTER UPDATE OF facet, value, label ON portal_tag
    FOR EACH ROW WHEN (
        OLD.facet IS DISTINCT FROM NEW.facet
        OR OLD.value IS DISTINCT FROM NEW.value
        OR OLD.label IS DISTINCT FROM NEW.label
    )
    EXECUTE FUNCTION indexing_touch_packages_of_tag();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS indexing_touch_packages_of_tag ON portal_tag;
CREATE TRIGGER indexing_touch_packages_of_tag
    AFTER UPDATE OF facet, value ON portal_tag
    FOR EACH ROW WHEN (OLD.facet IS DISTINCT FROM NEW.facet OR OLD.value IS DISTINCT FROM NEW.value)
    EXECUTE FUNCTION indexing_touch_packages_of_tag();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("indexing", "0003_capture_tag_link_updates"),
        ("portal", "0007_tag_vocabulary"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
