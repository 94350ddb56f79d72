"""nclib.tables: a table label's $...$ as the inline-math element the page's MathJax typesets."""
import pytest

from nclib.tables import math_label

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
