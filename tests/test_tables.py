"""nclib.tables: a table label's $...$ as the inline-math element the page's MathJax typesets, a frame as a
chapter's table, and the names in the first column of a markdown table."""
import re

import pytest

from nclib.tables import first_column_names, math_label, styled

SPAN = '<span class="math notranslate nohighlight">'


def test_math_becomes_the_inline_math_element():
    assert math_label(r"$WW^\top$") == SPAN + r"\(WW^\top\)</span>"


def test_text_and_math_mix():
    assert math_label(r"$\sigma_k^2$ of $W_1$") == f"{SPAN}\\(\\sigma_k^2\\)</span> of {SPAN}\\(W_1\\)</span>"


def test_plain_label_is_unchanged():
    assert math_label("within_class_err") == "within_class_err"
    assert math_label("") == ""


def test_html_characters_are_escaped_inside_and_outside_math():
    # the browser decodes &lt; and &amp; back, so MathJax reads the TeX as written; raw < would open a tag
    assert math_label("$a<b$ & c") == f"{SPAN}\\(a&lt;b\\)</span> &amp; c"
    assert math_label(r"$\begin{smallmatrix}1&2\end{smallmatrix}$") == (
        SPAN + r"\(\begin{smallmatrix}1&amp;2\end{smallmatrix}\)</span>")


@pytest.mark.parametrize("bad", ["$W", "a $b$ $c", "$$", "$ $", r"$\)x$", r"$x\($", 3, None, ["$W$"]])
def test_refuses_labels_it_cannot_typeset(bad):
    with pytest.raises(ValueError, match="^label"):
        math_label(bad)


def test_styled_writes_cells_by_their_columns_format_and_typesets_the_labels():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"closed": [2.5, 0.125], "PE": [3e-7, 1e-9], "K": [3, 4]}, index=["first", "second"])
    # a format for a column the frame lacks is left unused: one mapping serves the tables cut from one frame
    shown = styled(frame, {"closed": "{:.3f}", "PE": lambda v: f"{v:.0e}", "not a column": "{:.9f}"},
                   {"PE": "$WE$", "not a column": "$Q$"}, caption="The minimum")
    page = shown.to_html()
    cells = re.findall(r"<td[^>]*>(.*?)</td>", page)
    assert cells == ["2.500", "3e-07", "3", "0.125", "1e-09", "4"]
    headers = re.findall(r'<th [^>]*class="col_heading[^"]*"[^>]*>(.*?)</th>', page)
    assert headers == ["closed", f"{SPAN}\\(WE\\)</span>", "K"]
    assert "first" not in page and "second" not in page  # no index
    assert "<caption>The minimum</caption>" in page


def test_styled_shows_the_index_with_its_labels_typeset_when_asked():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"value": [1.0]}, index=["K < N"])
    page = styled(frame, labels={"K < N": "$K<N$"}, index=True).to_html()
    assert f"{SPAN}\\(K&lt;N\\)</span>" in page


@pytest.mark.parametrize("kwargs, name", [(dict(frame=[[1.0]]), "frame"), (dict(formats=["{:.2f}"]), "formats"),
                                          (dict(labels="$W$"), "labels"), (dict(caption=3), "caption"),
                                          (dict(index=1), "index")])
def test_styled_refuses_by_name(kwargs, name):
    pd = pytest.importorskip("pandas")
    args = {"frame": pd.DataFrame({"a": [1.0]}), **kwargs}
    with pytest.raises(ValueError, match=f"^{name}"):
        styled(**args)


def test_first_column_names_of_the_first_table_in_row_order():
    text = ("Each row:\n\n| column | what |\n| --- | :--- |\n| `epoch` | the epoch |\n"
            "| `nc1`, `nc2_w`, `nc3` | the metrics, `nc2_h` named in the second cell only |\n"
            "  | `wall_time` | seconds |\n\nProse after it.\n\n| name |\n| --- |\n| `other` |\n")
    assert first_column_names(text) == ["epoch", "nc1", "nc2_w", "nc3", "wall_time"]
    # a line of | before the table that no delimiter row follows is not its header
    assert first_column_names("| not a table |\n\n| a | b |\n|:-:|---|\n| `x` | 1 |") == ["x"]
    assert first_column_names("| a | b |\n| --- | --- |\n") == []  # a header and no body: no names


@pytest.mark.parametrize("bad", [
    None, 3, ["| a |", "| --- |"],  # not a string
    "", "no table here", "| a | b |\n| `x` | 1 |",  # no delimiter row after a header
    "| a | b |\n| --- | --- |\n| `x` | 1 |\n| y | `z` |",  # a body row whose first cell names nothing
    "| a | b |\n| --- | --- |\n| `x-y` | 1 |",  # a name is a word in backticks
])
def test_first_column_names_refuses_text_without_a_table_of_names(bad):
    with pytest.raises(ValueError, match="^text must"):
        first_column_names(bad)
