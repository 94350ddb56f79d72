import numpy as np
import pytest

from nclib.rounding import (as_tex, at_least, at_most, number, reads_as, round_down, round_up, significant_figures,
                            written, written_column)


def nb(text):
    """The text as written: no-break spaces around the ×."""
    return text.replace(" × ", "\u00a0×\u00a0")


@pytest.mark.parametrize("x, up, down", [(6.37e-7, "6.4 × 10⁻⁷", "6.3 × 10⁻⁷"), (0.0575, "0.058", "0.057"),
                                         (1.12e-6, "1.2 × 10⁻⁶", "1.1 × 10⁻⁶"), (18.0, "18", "18"), (0.0, "0", "0"),
                                         (-0.0575, "-0.057", "-0.058"), (99.6, "100", "99"),
                                         (12345.0, "13,000", "12,000"), (1e-5, "10⁻⁵", "10⁻⁵"),
                                         (4.93e6, "5 × 10⁶", "4.9 × 10⁶")])
def test_bounds_round_outward(x, up, down):
    assert round_up(x) == nb(up) and round_down(x) == nb(down)


@pytest.mark.parametrize("x, sig, text", [(0.125, 2, "0.12"), (0.375, 2, "0.38"), (2.5, 1, "2"), (3.5, 1, "4"),
                                          (-0.125, 2, "-0.12"), (1250.0, 2, "1,200")])
def test_written_rounds_an_exact_tie_to_even(x, sig, text):
    """Each x is a tie at sig figures in binary as in decimal (its shortest decimal ends in the 5): written rounds it
    to the even last figure, as its docstring says, not away from zero; a column writes it so too."""
    assert written(x, sig) == text and written_column([x], sig) == [text]


def test_kept_zeros_keep_the_thousands_separators():
    """A whole number written to all its figures with its trailing zeros kept (zeros=True, and every column) is still
    grouped by thousands: 1,234, as the prose writes it, never 1234."""
    assert written(1234.0, 4, zeros=True) == written(1234.0, 4) == "1,234"
    assert written_column([1234.0, 5678.0, 12.5], 4) == ["1,234", "5,678", "12.50"]
    assert number(written(1234.0, 4, zeros=True)) == 1234.0

@pytest.mark.parametrize("x, sig, text", [(6.37e-7, 2, "6.4 × 10⁻⁷"), (0.000123, 2, "0.00012"), (2600.0, 3, "2,600"),
                                          (9.96, 2, "10"), (-3.1e-9, 1, "-3 × 10⁻⁹"), (123456.0, 3, "123,000"),
                                          (7.25e7, 3, "7.25 × 10⁷"), (0.5, 3, "0.5"),
                                          (1e6, 2, "10⁶"), (-1e-5, 1, "-10⁻⁵"),
                                          (1e-4, 2, "0.0001")])  # below 10^-4 a power of ten, 10^-4 itself not
def test_written_as_the_chapters_write_numbers(x, sig, text):
    assert written(x, sig) == nb(text) and number(text) == number(nb(text)) == pytest.approx(x, rel=10.0 ** (1 - sig))


def test_bounds_hold_and_numbers_read_back_for_many_values():
    rng = np.random.default_rng(0)
    for x in 10.0 ** rng.uniform(-15, 9, 3000) * rng.choice([-1, 1], 3000):
        for sig in (1, 2, 3):
            assert number(round_down(x, sig)) <= x <= number(round_up(x, sig))
            near = written(x, sig)
            assert abs(number(near) - x) <= abs(x) * 0.5 * 10.0 ** (1 - sig) * (1 + 1e-12)
            assert "e" not in near and "E" not in near  # never a program's E-notation
            assert " " not in near  # no line ends inside a number
            power = any(c in near for c in "⁰¹²³⁴⁵⁶⁷⁸⁹")  # a power of ten: its mantissa, 1 when none is written
            mantissa = (near.split("\u00a0×\u00a0")[0] if "×" in near else "1") if power else near
            mantissa = mantissa.replace(",", "").replace(".", "").lstrip("-").strip("0")
            assert 1 <= len(mantissa) <= sig


@pytest.mark.parametrize("x, sig, up, down", [(0.0192, 2, "0.020", "0.019"), (1.00008, 3, "1.01", "1.00"),
                                              (0.000802, 2, "0.00081", "0.00080"), (31.04, 3, "31.1", "31.0"),
                                              (99.6, 2, "100", "99"), (1.0e6, 2, "1.0 × 10⁶", "1.0 × 10⁶"),
                                              (4.08e-7, 2, "4.1 × 10⁻⁷", "4.0 × 10⁻⁷")])
def test_bounds_keep_their_trailing_zeros_when_asked(x, sig, up, down):
    """A range's two bounds at one precision: 0.013 to 0.020, not 0.013 to 0.02; still outward."""
    assert round_up(x, sig, zeros=True) == nb(up) and round_down(x, sig, zeros=True) == nb(down)
    assert number(round_down(x, sig, zeros=True)) <= x <= number(round_up(x, sig, zeros=True))
    # the same numbers as without them
    assert number(round_up(x, sig, zeros=True)) == number(round_up(x, sig))
    assert number(round_down(x, sig, zeros=True)) == number(round_down(x, sig))


@pytest.mark.parametrize("x, sig, text", [(3.3, 3, "3.30"), (0.0510, 3, "0.0510"), (2.0, 2, "2.0"), (16.254, 3, "16.3"),
                                          (62780.4, 3, "62,800"), (1.0e6, 2, "1.0 × 10⁶"), (4.0e-7, 2, "4.0 × 10⁻⁷")])
def test_written_keeps_its_trailing_zeros_when_asked(x, sig, text):
    """A number to its figures with their zeros, as a table column of it alone writes it (3.30, not 3.3)."""
    assert written(x, sig, zeros=True) == nb(text) == written_column([x], sig)[0]
    assert number(written(x, sig, zeros=True)) == number(written(x, sig))
    with pytest.raises(ValueError, match="^zeros must be True or False"):
        written(x, sig, zeros="yes")


def test_refusals_name_the_argument():
    with pytest.raises(ValueError, match="x must be a finite"):
        round_up(float("nan"))
    with pytest.raises(ValueError, match="x must be a finite"):
        written("ten")
    with pytest.raises(ValueError, match="sig"):
        round_down(1.0, sig=0)
    for bad in (1, "yes", None):  # not read as True or False
        with pytest.raises(ValueError, match="^zeros must be True or False"):
            round_up(1.0, 2, zeros=bad)
    with pytest.raises(ValueError, match="^sig must be at most 17"):  # not decimal's InvalidOperation at 29
        written(1 / 3, sig=29)
    assert written(1 / 3, sig=17) == "0.3333333333333333"  # the shortest decimal that reads back as 1/3
    for bad in (True, "0.5"):  # not read as 1 and 0.5
        with pytest.raises(ValueError, match="x must be a finite"):
            written(bad)
    for bad in (10 ** 400, -10 ** 400):  # beyond float64: once an OverflowError
        for call in (written, round_up, at_most, lambda x: written_column([1.0, x])):
            with pytest.raises(ValueError, match=r"^x must be a finite number, got one beyond float64's range"):
                call(bad)
    for bad in ("1e-05", "1,00", "ten", "6.4 x 10^-7", ""):
        with pytest.raises(ValueError, match="text must be a number"):
            number(bad)
    with pytest.raises(ValueError, match="text must be a string"):
        number(0.5)


def test_a_column_is_written_in_one_notation_at_one_precision():
    assert written_column([950_000, 1.04e6, 810_000], 2) == [nb("9.5 × 10⁵"), nb("1.0 × 10⁶"), nb("8.1 × 10⁵")]
    assert written_column([0.2, 0.22, 0.431], 2) == ["0.20", "0.22", "0.43"]
    assert written_column([2600.0, 0.5, 0.0], 2) == ["2,600", "0.50", "0"]
    assert written_column([5.0, 31.8, 0.010036], 3) == ["5.00", "31.8", "0.0100"]  # a whole number keeps its zeros
    values = [1.69e-6, 2.13e-6, 0.614]
    texts = written_column(values, 3)
    assert texts == [nb("1.69 × 10⁻⁶"), nb("2.13 × 10⁻⁶"), "0.614"]  # 0.614, not 6.14 × 10⁻¹
    assert [number(t) for t in texts] == pytest.approx(values, rel=5e-3)


def test_a_column_writes_powers_only_on_the_side_of_1_that_needs_them():
    # a figure's final NC1: tiny where a run collapsed, of order 1 where it did not
    assert written_column([1.7e-6, 3.7e-6, 0.61, 3.24, 1.4], 2) == [
        nb("1.7 × 10⁻⁶"), nb("3.7 × 10⁻⁶"), "0.61", "3.2", "1.4"]
    # below 0.1 beside a value below 10^-4: a power; from 10 on, beside no value from 10^6 on: a decimal
    assert written_column([4.8e-2, 2.1e-6, 32.0, 1250.0], 2) == [nb("4.8 × 10⁻²"), nb("2.1 × 10⁻⁶"), "32", "1,200"]
    # from 10^4 on beside a value from 10^6 on: a power; below 10^4 a decimal, even beside it (a figure's falls of
    # NC1: 16.3 and 144 beside 1.50 × 10⁶, not 1.63 × 10¹ and 1.44 × 10²)
    assert written_column([2.3e5, 4.1e6, 35.0, 1.2, 0.05], 2) == [
        nb("2.3 × 10⁵"), nb("4.1 × 10⁶"), "35", "1.2", "0.050"]
    assert written_column([16.25, 144.4, 62_800, 1.5e6], 3) == ["16.2", "144", nb("6.28 × 10⁴"), nb("1.50 × 10⁶")]
    assert written_column([9_990, 62_800, 950_000], 3) == ["9,990", "62,800", "950,000"]  # no value from 10^6 on
    # the rounded value decides: 9,996 to two figures is 10,000, on the side from 10^4 on
    assert written_column([9_996, 2e6], 2) == [nb("1.0 × 10⁴"), nb("2.0 × 10⁶")]
    assert written_column([9_940, 2e6], 2) == ["9,900", nb("2.0 × 10⁶")]
    assert written_column([0.0996, 2e-6], 2) == ["0.10", nb("2.0 × 10⁻⁶")]
    assert written_column([-3e-6, -0.5], 2) == [nb("-3.0 × 10⁻⁶"), "-0.50"]
    for values in ([1.7e-6, 0.61, 3.24, 32.0], [2.3e5, 4.1e6, 35.0, 1.2, 0.05], [16.25, 144.4, 62_800, 1.5e6]):
        assert [number(t) for t in written_column(values, 2)] == pytest.approx(values, rel=0.05)
    with pytest.raises(ValueError, match="values must be a list"):
        written_column(0.5)
    with pytest.raises(ValueError, match="x must be a finite"):
        written_column([float("nan")])


@pytest.mark.parametrize("x, sig, up, down", [
    (0.14007465, 2, "0.141", "0.14"),  # not 0.15, which reads as another number than 0.14
    (4928822.46, 3, "4.93 × 10⁶", "4.928 × 10⁶"),  # not 4.92 × 10⁶ beside 4.93 × 10⁶
    (9.313539, 3, "9.314", "9.31"),
    (2.304522968825401, 3, "2.3046", "2.3"),  # 2.305 would read as 2.31 to a reader who rounds ties up
    (62786.27, 3, "62,800", "62,780"),
    (9.996, 2, "10", "9.99"),  # 9.9 is not 10 to two figures
    (0.0216, 3, "0.0216", "0.0216"),  # exact at sig figures: nothing added
    (-0.14007, 2, "-0.14", "-0.141"), (0.0, 2, "0", "0"),
])
def test_bounds_that_read_as_the_number_itself(x, sig, up, down):
    assert at_most(x, sig) == nb(up) and at_least(x, sig) == nb(down)


def test_bounds_hold_and_read_as_written_for_many_values():
    rng = np.random.default_rng(1)
    for x in 10.0 ** rng.uniform(-12, 9, 2000) * rng.choice([-1, 1], 2000):
        for sig in (1, 2, 3):
            up, down, near = at_most(x, sig), at_least(x, sig), written(x, sig)
            assert number(down) <= x <= number(up)
            assert written(number(up), sig) == near and written(number(down), sig) == near
            # never fewer figures than the plain outward rounding, and no further from x
            assert number(round_down(x, sig)) <= number(down) and number(up) <= number(round_up(x, sig))


@pytest.mark.parametrize("x, sig, up, down", [
    (31.032, 3, "31.04", "31.0"),  # at least 31.0 beside a table's 31.0, not 31
    (1.0000839, 3, "1.001", "1.00"),  # between 1.00 and ..., beside a table's 1.00
    (0.0199993, 2, "0.020", "0.0199"),  # a figure more only where the plain rounding reads as another number
    (2.304522968825401, 3, "2.3046", "2.30"),
    (4928822.46, 3, "4.93 × 10⁶", "4.928 × 10⁶"), (1.0e6, 2, "1.0 × 10⁶", "1.0 × 10⁶"), (0.0, 2, "0", "0"),
])
def test_bounds_that_read_as_the_number_keep_their_trailing_zeros_when_asked(x, sig, up, down):
    assert at_most(x, sig, zeros=True) == nb(up) and at_least(x, sig, zeros=True) == nb(down)
    # the same numbers as without them, and as true and as near the number written to nearest
    assert number(at_most(x, sig, zeros=True)) == number(at_most(x, sig))
    assert number(at_least(x, sig, zeros=True)) == number(at_least(x, sig))
    assert number(at_least(x, sig, zeros=True)) <= x <= number(at_most(x, sig, zeros=True))
    assert written(number(at_most(x, sig, zeros=True)), sig) == written(x, sig)
    assert written(number(at_least(x, sig, zeros=True)), sig) == written(x, sig)


def test_bound_refusals_name_the_argument():
    with pytest.raises(ValueError, match="x must be a finite"):
        at_most(float("inf"))
    with pytest.raises(ValueError, match="x must be a finite"):
        at_least("0.5")
    with pytest.raises(ValueError, match="sig"):
        at_least(1.0, sig=0)
    with pytest.raises(ValueError, match="^sig must be at most 17"):
        at_most(1.0, sig=18)
    for bad in (1, "yes", None):  # not read as True or False
        with pytest.raises(ValueError, match="^zeros must be True or False"):
            at_least(1.0, 2, zeros=bad)
        with pytest.raises(ValueError, match="^zeros must be True or False"):
            at_most(1.0, 2, zeros=bad)


@pytest.mark.parametrize("bound, text, sig, reads", [
    ("4.928 × 10⁶", "4.93 × 10⁶", 3, True), ("4.92 × 10⁶", "4.93 × 10⁶", 3, False),  # at least 4.92 beside 4.93
    ("2.948", "2.95", 3, True), ("2.94", "2.95", 3, False), ("9.314", "9.31", 3, True), ("9.32", "9.31", 3, False),
    ("249.43", "249", 3, True), ("250", "249", 3, False), ("62,780", "6.28 × 10⁴", 3, True),
    ("31", "31.0", 3, True), ("1.00", "1.00", 3, True), ("0.0137", "0.014", 2, True), ("0.013", "0.014", 2, False),
    ("0.0137", "0.0137", 3, True), ("44", "44.4", 3, False),  # read at the text's figures: 44.0 is not 44.4
    ("2.305", "2.30", 3, False), ("2.305", "2.31", 3, False),  # a tie: 2.30 or 2.31 as the reader rounds it
    ("0", "0", 2, True), ("0", "0.0010", 2, False), ("-0.141", "-0.14", 2, True),
])
def test_reads_as_rounds_the_bound_to_the_texts_figures(bound, text, sig, reads):
    assert reads_as(nb(bound), nb(text), sig) is reads


def test_bounds_read_as_the_number_written_to_nearest_and_plain_roundings_need_not():
    rng = np.random.default_rng(2)
    misread = 0
    for x in 10.0 ** rng.uniform(-8, 8, 1000):
        for sig in (2, 3):
            assert reads_as(at_least(x, sig), written(x, sig), sig) and reads_as(at_most(x, sig), written(x, sig), sig)
            assert reads_as(at_least(x, sig, zeros=True), written_column([x], sig)[0], sig)
            misread += not reads_as(round_down(x, sig), written(x, sig), sig)
    assert misread > 0  # a plain outward rounding reads as another number than the nearest one, often


def test_reads_as_refusals_name_the_argument():
    for bad in ("4.9e6", "", 4.9):
        with pytest.raises(ValueError, match="^bound must be a number as the chapters write it"):
            reads_as(bad, "4.9", 2)
        with pytest.raises(ValueError, match="^text must be a number as the chapters write it"):
            reads_as("4.9", bad, 2)
    for bad in (0, 18, 2.5):
        with pytest.raises(ValueError, match="^sig must"):
            reads_as("4.9", "4.9", bad)


@pytest.mark.parametrize("text, figures", [
    ("0.058", 2), ("1.740", 4), ("-1.2", 2), ("1,234.5", 5), ("100.0", 4), ("-0.0010", 2),
    ("13,000", 2), ("18", 2), ("100", 1),  # a whole number's trailing zeros: the fewest it may have been written to
    ("0.0", 1), ("0.00", 2), ("0", 1), ("-0.0", 1),  # a zero: the figures after its point, one where none
    ("6.4 × 10⁻⁷", 2), ("-6.4 × 10⁻⁷", 2), ("1.0 × 10⁶", 2), ("4.928 × 10⁶", 4), ("10⁻⁵", 1), ("-10⁶", 1),
])
def test_significant_figures_of_a_written_number(text, figures):
    for t in (text, nb(text)):  # ordinary or no-break spaces around the ×, as number reads them
        assert significant_figures(t) == figures


def test_significant_figures_are_those_a_column_was_written_to():
    rng = np.random.default_rng(3)
    for x in 10.0 ** rng.uniform(-9, 9, 1000) * rng.choice([-1, 1], 1000):
        for sig in (1, 2, 3, 4):
            cell = written_column([x], sig)[0]
            shown = significant_figures(cell)
            # a whole number may show fewer (its trailing zeros not counted), a decimal or a mantissa shows them all
            assert shown == sig or ("." not in cell and shown < sig and number(cell) % 10 ** (sig - shown) == 0)
            # at those figures a bound beside the cell reads as it
            assert reads_as(at_most(x, shown, zeros=True), cell, shown)
            assert reads_as(at_least(x, shown, zeros=True), cell, shown)


def test_significant_figures_refusals_name_the_argument():
    for bad in (1.2, None, b"0.5"):
        with pytest.raises(ValueError, match="^text must be a string"):
            significant_figures(bad)
    for bad in ("1e-5", "", "-", "1,00", "6.4 x 10^-7", "0.0 %"):
        with pytest.raises(ValueError, match="^text must be a number as the chapters write it"):
            significant_figures(bad)


@pytest.mark.parametrize("x, sig, like, up, down", [
    # a figure's smallest fall of NC1 beside its drops table's cell, written as a power of ten there
    (810_735.2, 3, "8.11 × 10⁵", "8.11 × 10⁵", "8.107 × 10⁵"),
    (62_786.27, 3, "6.28 × 10⁴", "6.28 × 10⁴", "6.278 × 10⁴"),
    (0.614, 2, "6.1 × 10⁻¹", "6.14 × 10⁻¹", "6.1 × 10⁻¹"),  # beside a column written in powers throughout
    (4_928_822.46, 3, "4,930,000", "4,930,000", "4,928,000"),  # a decimal beside a decimal, however large
    (100_000.0, 2, "1.0 × 10⁵", "1.0 × 10⁵", "1.0 × 10⁵"),  # a mantissa of 1 keeps its figures, as the column's
    (249.4299, 3, "249", "249.43", "249"), (0.0, 2, "0", "0", "0"),
])
def test_a_bound_takes_the_notation_of_the_number_it_stands_beside(x, sig, like, up, down):
    assert at_most(x, sig, zeros=True, like=nb(like)) == nb(up)
    assert at_least(x, sig, zeros=True, like=nb(like)) == nb(down)
    for bound in (at_most(x, sig, zeros=True, like=nb(like)), at_least(x, sig, zeros=True, like=nb(like))):
        assert reads_as(bound, nb(like), sig)  # still the book's rule for a bound beside its number
    assert number(at_least(x, sig, like=nb(like))) == number(at_least(x, sig)) <= x
    assert number(at_most(x, sig, like=nb(like))) == number(at_most(x, sig)) >= x
    for bad in ("8.11e5", "", 8.11e5):
        with pytest.raises(ValueError, match="^like must be a number as the chapters write it"):
            at_least(x, sig, like=bad)
        with pytest.raises(ValueError, match="^like must be a number as the chapters write it"):
            at_most(x, sig, like=bad)


def test_a_uniform_column_writes_every_value_as_a_power_where_one_needs_it():
    # a summary's final NC1: tiny where a run collapsed, of order 1 where it did not, one notation throughout
    assert written_column([1.7e-6, 4.8e-2, 0.61, 3.24, 0.0], 2, uniform=True) == [
        nb("1.7 × 10⁻⁶"), nb("4.8 × 10⁻²"), nb("6.1 × 10⁻¹"), nb("3.2 × 10⁰"), "0"]
    assert written_column([16.25, 62_800, 1.5e6], 3, uniform=True) == [
        nb("1.62 × 10¹"), nb("6.28 × 10⁴"), nb("1.50 × 10⁶")]
    # a column that needs no power is written as without the option
    for values in ([0.2, 0.22, 0.431], [2600.0, 0.5, 0.0], [9_990, 62_800, 950_000]):
        assert written_column(values, 2, uniform=True) == written_column(values, 2)
    values = [1.7e-6, 4.8e-2, 0.61, 3.24]
    assert [number(t) for t in written_column(values, 2, uniform=True)] == pytest.approx(values, rel=0.05)
    for bad in (1, "yes", None):
        with pytest.raises(ValueError, match="^uniform must be True or False"):
            written_column([0.5], 2, uniform=bad)


@pytest.mark.parametrize("text, tex", [
    ("0.0001", "0.0001"), ("10⁻⁵", "10^{-5}"), ("6.4 × 10⁻⁷", r"6.4 \times 10^{-7}"),
    ("1.5 × 10³", r"1.5 \times 10^{3}"),
    ("2.6 × 10⁻¹²", r"2.6 \times 10^{-12}"), ("-6.4 × 10⁻⁷", r"-6.4 \times 10^{-7}"), ("-10⁻⁵", "-10^{-5}"),
    ("10⁶", "10^{6}"), ("0.058", "0.058"), ("-1.2", "-1.2"), ("18", "18"), ("0", "0"),
    ("13,000", "13{,}000"), ("1,234.5", "1{,}234.5"),  # a bare comma is punctuation in TeX's math
])
def test_a_written_number_in_tex(text, tex):
    for t in (text, nb(text)):  # ordinary or no-break spaces around the ×, as number reads them
        assert as_tex(t) == tex


def _read_tex(tex):
    """The number that as_tex's TeX stands for, read as Python reads a float."""
    plain = tex.replace("{,}", "").replace(r" \times 10^{", "e").replace("10^{", "1e").replace("}", "")
    return float(plain)


def test_tex_stands_for_the_number_written():
    rng = np.random.default_rng(5)
    for x in 10.0 ** rng.uniform(-12, 12, 1000) * rng.choice([-1, 1], 1000):
        for text in (written(x, 1), written(x, 3), *written_column([x, 1e-7, 2e7], 2)):
            tex = as_tex(text)
            assert _read_tex(tex) == number(text)
            assert "×" not in tex and "\u00a0" not in tex and not any(c in tex for c in "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def test_as_tex_refusals_name_the_argument():
    for bad in (1e-5, None, b"0.5"):
        with pytest.raises(ValueError, match="^text must be a string"):
            as_tex(bad)
    for bad in ("1e-05", "", "1,00", "ten", "6.4 x 10^-7", "6.4 \\times 10^{-7}", "$10^{-5}$", "0.0 %"):
        with pytest.raises(ValueError, match="^text must be a number as the chapters write it"):
            as_tex(bad)
