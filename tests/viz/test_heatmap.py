"""Text heat maps: escaped HTML, PNG files, clear errors."""

from __future__ import annotations

import pytest

from elman.viz.heatmap import text_heatmap_html, write_text_heatmap


def test_html_escapes_and_colours_every_piece(tmp_path):
    page = text_heatmap_html(list('a<b"\n'), [1.0, -1.0, 0.0, 0.5, 0.2], "t")
    assert page.count("<span") == 5 and "&lt;" in page and "&quot;" in page
    assert "rgba(214,39,40,1.000)" in page and "rgba(31,119,180,1.000)" in page
    path = write_text_heatmap(tmp_path / "u.html", list("ab"), [0.1, 0.2])
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_png_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    path = write_text_heatmap(tmp_path / "u.png", list("hello\nworld"), list(range(11)), width=4)
    assert path.stat().st_size > 0


@pytest.mark.parametrize(
    "name, values, match",
    [
        ("u.html", [1.0], "values: expected one per"),
        ("u.txt", [1.0, 2.0], "path"),
        ("u.html", [1.0, float("nan")], "finite"),
    ],
)
def test_bad_input(tmp_path, name, values, match):
    with pytest.raises(ValueError, match=match):
        write_text_heatmap(tmp_path / name, list("ab"), values)
