"""The catalog's schema: every column documented, and a row that does not match it refused."""

import pytest

from drivesim.data.catalog import COLUMNS, PARTITION_COLUMNS
from drivesim.export import catalog as catalog_writer


def test_docs_document_every_column(repo):
    page = (repo / "docs" / "catalogs.md").read_text()
    for name, _, _ in PARTITION_COLUMNS + COLUMNS:
        assert f"| `{name}` |" in page, name


def test_a_row_must_match_the_schema(tmp_path):
    writer = catalog_writer.CatalogWriter(tmp_path / "cat")
    with pytest.raises(ValueError, match=r"missing \[.*'boxes'.*\], unknown \['colour'\]"):
        writer.commit(
            {"clip_id": "x-1", "time_of_day": "day", "colour": "red"}, tmp_path / "a", tmp_path / "b"
        )
