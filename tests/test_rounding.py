import numpy as np
import pytest

from nclib.rounding import round_down, round_up


@pytest.mark.parametrize("x, up, down", [(6.37e-7, "6.4e-07", "6.3e-07"), (0.0575, "0.058", "0.057"),
                                         (1.12e-6, "1.2e-06", "1.1e-06"), (18.0, "18", "18"), (0.0, "0", "0"),
                                         (-0.0575, "-0.057", "-0.058"), (99.6, "100", "99"),
                                         (12345.0, "13000", "12000")])
def test_bounds_round_outward(x, up, down):
    assert round_up(x) == up and round_down(x) == down


def test_bounds_hold_for_many_values():
    rng = np.random.default_rng(0)
    for x in 10.0 ** rng.uniform(-15, 5, 2000):
        for sig in (1, 2, 3):
            assert float(round_down(x, sig)) <= x <= float(round_up(x, sig))
            text = round_up(x, sig)
            digits = text.split("e")[0].replace(".", "").lstrip("0") if "." in text or "e" in text else text.rstrip("0")
            assert len(digits) <= sig + 1 and "e+" not in text  # whole numbers are written out


def test_refusals_name_the_argument():
    with pytest.raises(ValueError, match="x must be a finite"):
        round_up(float("nan"))
    with pytest.raises(ValueError, match="sig"):
        round_down(1.0, sig=0)
