"""The one grammar of a parameter's value written as text (nclib.parameters.parse_value, parse_setting): lists in
brackets, numbers, booleans and none, the text keys kept as text, the refusals by name."""
from __future__ import annotations

import pytest

from nclib import parameters
from nclib.parameters import parse_setting, parse_value


@pytest.mark.parametrize("text, value", [
    ("[6,3,2]", [6, 3, 2]),
    ("[ 1e-3 , reference ]", [1e-3, "reference"]),
    ("[]", []),
    ("[1,[2,[3,4]],[]]", [1, [2, [3, 4]], []]),
    ("12", 12),
    ("-3", -3),
    ("1e-5", 1e-5),
    ("0.5", 0.5),
    ("true", True),
    ("False", False),
    ("none", None),
    ("NONE", None),
    ("[true,none]", [True, None]),
    ("full", "full"),
    ("  7  ", 7),
])
def test_values_are_lists_numbers_booleans_none_or_text(text, value):
    got = parse_value(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("name, text, value", [
    ("run_name", "007", "007"),          # a folder name, not the int 7
    ("run_tag", "1e3", "1e3"),
    ("data_path", "none", None),
    ("data_path", "None", None),
    ("data_path", "/data/a b.npz", "/data/a b.npz"),
    ("precision", "tf32", "tf32"),
    ("device", "true", "true"),          # a name, never a boolean
    ("out_dir", "runs/a[1]", "runs/a[1]"),  # a bracket inside a path's text
    ("data_path", "[a.npz,007]", ["a.npz", "007"]),  # a list's items follow the same rule
    ("width", "007", 7),                 # not a text key: a number
    ("lam_W", "reference", "reference"),
])
def test_text_keys_keep_their_text(name, text, value):
    assert (name in parameters.TEXT_KEYS) == (name not in ("width", "lam_W"))
    got = parse_value(text, name)
    assert got == value and type(got) is type(value)


def test_a_setting_splits_at_the_first_equals_sign():
    assert parse_setting("run_name=007") == ("run_name", "007")
    assert parse_setting("data_path=none") == ("data_path", None)
    assert parse_setting("precision=tf32") == ("precision", "tf32")
    assert parse_setting(" counts = [500,100,20]") == ("counts", [500, 100, 20])
    assert parse_setting("lr_milestones=[6000]") == ("lr_milestones", [6000])
    assert parse_setting("out_dir=a=b") == ("out_dir", "a=b")


@pytest.mark.parametrize("item, flag, named", [
    ("width", "--set", "--set width"),                # no '='
    ("=32", "--set", "--set =32"),                    # no name
    ("  =32", "--levers", "--levers"),
    ("width=", "--set", "--set width"),               # no value
    ("width=  ", "--set", "--set width"),
    ("counts=[6,3", "--set", "--set counts"),         # unbalanced brackets
    ("counts=[6,3]]", "--set", "--set counts"),
    ("counts=6]", "--set", "--set counts"),
    ("counts=[[6,3],2", "--set", "--set counts"),
    ("counts=[6,,3]", "--set", "--set counts"),       # an empty item
    ("counts=[6,3,]", "--set", "--set counts"),
    ("counts=[6,[],[,]]", "--set", "--set counts"),
    ("counts=[6][3]", "--set", "--set counts"),       # text after the list
])
def test_bad_settings_are_refused_by_name(item, flag, named):
    with pytest.raises(ValueError, match=named):
        parse_setting(item, flag)


def test_bad_values_are_refused_by_name():
    with pytest.raises(ValueError, match="counts"):
        parse_value("[1,2", "counts")
    with pytest.raises(ValueError, match="lam_W"):
        parse_value("", "lam_W")
    with pytest.raises(ValueError, match="data_path"):
        parse_value("[a,", "data_path")
    with pytest.raises(ValueError, match="counts"):
        parse_value(12, "counts")
    with pytest.raises(ValueError, match="--grid seed"):
        parameters.split_items("0,,1", "--grid seed")
    assert parameters.split_items("1,[2,3],[[4]]") == ["1", "[2,3]", "[[4]]"]

