"""The paper's reference table is complete and unambiguous."""

import pytest

from resnet_repro.paper.reference import paper_table, paper_value


def test_reference_table_has_the_papers_tables():
    table = paper_table()
    assert {"Table 1", "Table 2", "Table 3", "Table 6", "Figure 3"} <= set(table.source)
    assert table.value.notna().all()
    assert not table.duplicated(["source", "model", "metric"]).any()


def test_lookup_and_unknown_lookup():
    assert paper_value("test_error", "ResNet-110") == pytest.approx(6.43)
    assert paper_value("top1_error", "ResNet-34 C") == pytest.approx(24.19)
    with pytest.raises(KeyError, match="models with it"):
        paper_value("test_error", "ResNet-57")
