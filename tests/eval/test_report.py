"""Results table in a markdown file: created, updated newest-first, text outside markers kept."""

from chatdoc.tools.eval.report import MAX_ROWS, TABLES, update_results_md


def test_results_md_table(tmp_path):
    p = tmp_path / "RESULTS.md"
    p.write_text("# Results\n\nIntro text.\n")
    n = len(TABLES["summary"][1])
    update_results_md("summary", ["d1"] + ["x"] * (n - 1), p)
    update_results_md("summary", ["d2"] + ["y"] * (n - 1), p)
    text = p.read_text()
    assert "Intro text." in text
    assert text.count("<!-- chatdoc-results:summary -->") == 1
    rows = [ln for ln in text.splitlines() if ln.startswith("| d") and not ln.startswith("| date")]
    assert rows[0].startswith("| d2") and rows[1].startswith("| d1")
    for i in range(MAX_ROWS + 3):
        update_results_md("summary", [f"d{i + 3}"] + ["z"] * (n - 1), p)
    rows = [ln for ln in p.read_text().splitlines() if ln.startswith("| d") and not ln.startswith("| date")]
    assert len(rows) == MAX_ROWS
