"""The shared input validators of nclib._checks: what each accepts, and the refusal naming the argument."""
import numpy as np
import pytest

from nclib import _checks, _samples, solvers


@pytest.mark.parametrize("value", [-1, -1e-300, np.nan, np.inf, -np.inf, "1e-3", True, np.bool_(False), 1 + 0j, None])
def test_positive_float_refuses_a_negative_non_finite_or_non_number_as_not_positive(value):
    with pytest.raises(ValueError, match=r"^rate must be a finite positive number, got "):
        _checks.positive_float(value, "rate")


@pytest.mark.parametrize("value", [0, 0.0, -0.0, np.float32(0)])
def test_positive_float_refuses_zero_as_not_strictly_positive(value):
    with pytest.raises(ValueError, match=r"^rate must be strictly positive, got "):
        _checks.positive_float(value, "rate")


def test_positive_float_returns_a_python_float():
    for value, want in [(3, 3.0), (np.float32(0.5), 0.5), (np.array(2e-300), 2e-300), (np.int64(7), 7.0)]:
        got = _checks.positive_float(value, "rate")
        assert type(got) is float and got == want


def test_positive_normal_float_refuses_a_subnormal_and_takes_the_normal_range():
    tiny = np.finfo(np.float64).tiny
    for value in (tiny, 1.0, 1e308):
        assert _checks.positive_normal_float(value, "alpha") == value
    for value in (tiny / 2, 1e-320, 5e-324):
        with pytest.raises(ValueError, match=r"^alpha must be a normal float64 \(at least 2.23e-308\), got "):
            _checks.positive_normal_float(value, "alpha")
    with pytest.raises(ValueError, match=r"^alpha must be strictly positive, got 0"):
        _checks.positive_normal_float(0.0, "alpha")


def test_nonneg_float_takes_zero_and_refuses_a_negative_as_not_non_negative():
    assert _checks.nonneg_float(0, "decay") == 0.0 and _checks.nonneg_float(2, "decay") == 2.0
    with pytest.raises(ValueError, match=r"^decay must be a finite non-negative number, got -1"):
        _checks.nonneg_float(-1, "decay")
    with pytest.raises(ValueError, match=r"^decay must be a non-negative number, got 'x'"):
        _checks.nonneg_float("x", "decay")


def test_a_positive_argument_of_the_solver_is_refused_as_not_positive():
    # a negative start scale was once refused as "not non-negative", though 0 is refused too
    with pytest.raises(ValueError, match=r"^scales must be a finite positive number, got -1$"):
        solvers.minimize([3, 2, 1], 0.01, 0.01, scales=(-1,))
    with pytest.raises(ValueError, match=r"^lam_W\[1\] must be a finite positive number, got -0.1$"):
        solvers.minimize([3, 2, 1], [0.01, -0.1], 0.01, L=2)
    with pytest.raises(ValueError, match=r"^lam_H must be strictly positive, got 0$"):
        solvers.minimize([3, 2, 1], 0.01, 0)


def test_matrix_refuses_a_wrong_shape_and_mentions_none_only_where_the_shape_has_one():
    with pytest.raises(ValueError, match=r"^E must have shape \(4, 3\)") as fixed:
        _checks.matrix(np.ones((2, 2)), "E", (4, 3))
    assert "None" not in str(fixed.value)  # no axis of (4, 3) is free
    with pytest.raises(ValueError, match=r"^E must have shape \(4, None\)") as free:
        _checks.matrix(np.ones((2, 2)), "E", (4, None))
    assert "None = any" in str(free.value)
    assert _checks.matrix(np.ones((4, 7)), "E", (4, None)).shape == (4, 7)


BIG = 10 ** 400  # a Python int beyond float64's range: float() raises OverflowError on it


def test_numbers_beyond_float64_are_refused_by_name_not_as_an_overflow():
    """A Python int of 10**400 once escaped the converters as an OverflowError naming no argument."""
    for check in (_checks.nonneg_float, _checks.positive_float, _checks.positive_normal_float):
        with pytest.raises(ValueError, match=r"^rate must be a finite (non-negative|positive) number, got an integer "
                                             r"of 401 digits$"):
            check(BIG, "rate")
    with pytest.raises(ValueError, match=r"^rate must be a finite positive number"):
        _checks.positive_float(-BIG, "rate")
    for call, name in ((lambda: _checks.matrix([[BIG, 1]], "H"), "H"), (lambda: _checks.vector([1, BIG], "b"), "b")):
        with pytest.raises(ValueError, match=rf"^{name} must be finite: a number beyond float64's range"):
            call()
    with pytest.raises(ValueError, match=r"^kappa must be a non-empty 1-D array of finite non-negative"):
        _checks.singular_values([2.0, BIG])
    with pytest.raises(ValueError, match=r"^N must be at most 1.8e\+308 \(a float64\), got an integer of 401 digits$"):
        _checks.positive_int(BIG, "N")
    # the largest float64 itself, and an int just inside the range, are still numbers
    top = _checks.FLOAT_MAX
    assert _checks.positive_float(top, "rate") == top and _checks.positive_int(10 ** 308, "N") == 10 ** 308
    assert _checks.matrix([[10 ** 300]], "H")[0, 0] == 1e300


def test_counts_take_every_int64_count_and_refuse_from_2_to_the_63():
    """Integer counts are compared with int64's largest value exactly: 2**63 - 511 .. 2**63 - 1 were once refused as
    they rounded up to 2.0**63; floats are compared as floats, the largest below 2**63 being 2**63 - 1024."""
    top = 2 ** 63 - 1
    for n in ([top, 5], [top - 511, 1], np.array([top], dtype=np.uint64), np.array([top, 2], dtype=np.int64)):
        got = _checks.counts(n)
        assert got.dtype == np.int64 and got.tolist() == [int(v) for v in n]
    assert _checks.counts([2.0 ** 63 - 1024, 3.0]).tolist() == [2 ** 63 - 1024, 3]
    for n in ([2 ** 63], np.array([2 ** 63, 1], dtype=np.uint64), np.array([2 ** 64 - 1], dtype=np.uint64),
              [2.0 ** 63, 1.0], [1e19]):
        with pytest.raises(ValueError, match=r"^counts must hold class counts below 2\*\*63 \(int64\)"):
            _checks.counts(n, "counts")


def test_width_refuses_a_hidden_width_past_k_and_max_width(monkeypatch):
    """d = 10**12 once asked numpy for its d x d layers (MemoryError naming no argument); a width is at most
    max(K, MAX_WIDTH), so K itself is always taken."""
    assert _checks.MAX_WIDTH == 10 ** 4
    assert _checks.width(10 ** 4, 3) == 10 ** 4 and _checks.width(3, 3) == 3
    for d in (10 ** 4 + 1, 10 ** 12):
        with pytest.raises(ValueError, match=r"^d must be at most max\(K, MAX_WIDTH\) = 10,000 "):
            _checks.width(d, 3)
    monkeypatch.setattr(_checks, "MAX_WIDTH", 2)
    assert _checks.width(5, 5) == 5 and _checks.width(2, 5) == 2
    with pytest.raises(ValueError, match=r"^d must be at most max\(K, MAX_WIDTH\) = 5 "):
        _checks.width(6, 5)
    for d in (0, 1.5, True):
        with pytest.raises(ValueError, match=r"^d must be a positive integer"):
            _checks.width(d, 5)


def test_width_bounds_the_d_x_d_layers_of_a_deep_head_together(monkeypatch):
    """With the depth L of a head whose layers are built, its L - 1 layers of d x d hold at most MAX_WIDTH^2
    entries together, refused naming d and L: d = MAX_WIDTH at L = 1000 (800 GB of layers) and K = 10**5 classes at
    their default width d = K and L = 3 (160 GB) passed the bound max(K, MAX_WIDTH) before.  L = 1 has no d x d
    layer, so d = K is taken there at any K; the edges, (L - 1) d^2 = MAX_WIDTH^2, are taken."""
    assert _checks.width(10 ** 4, 3, L=2) == 10 ** 4 and _checks.width(7071, 3, L=3) == 7071
    assert _checks.width(316, 3, L=1000) == 316
    for d, K, L, widest in ((7072, 3, 3, "7,071"), (10 ** 4, 3, 1000, "316"), (10 ** 5, 10 ** 5, 3, "7,071")):
        with pytest.raises(ValueError, match=rf"^d must be at most {widest} with L={L:,} layers: .*got d={d:,} "):
            _checks.width(d, K, L=L)
    assert _checks.width(10 ** 5, 10 ** 5, L=1) == 10 ** 5 == _checks.width(10 ** 5, 10 ** 5)
    monkeypatch.setattr(_checks, "MAX_WIDTH", 4)  # 16 entries
    assert _checks.width(4, 3, L=2) == 4 and _checks.width(2, 3, L=5) == 2 and _checks.width(3, 3, L=1) == 3
    with pytest.raises(ValueError, match=r"^d must be at most 2 with L=3 layers: .*got d=3 "):
        _checks.width(3, 3, L=3)  # d = K, 18 entries
    with pytest.raises(ValueError, match=r"^L must be a positive integer"):
        _checks.width(2, 3, L=0)


def test_layer_lambdas_refuse_a_depth_beyond_max_depth_before_allocating():
    """L = 10**12 once asked numpy for 7.3 TiB (MemoryError), L = 10**20 beyond its dimensions (a ValueError naming
    no argument); both now name L, at any decays, and a million layers still get their list."""
    assert _checks.MAX_DEPTH == 10 ** 6
    for L in (_checks.MAX_DEPTH + 1, 10 ** 12, 10 ** 20):
        for lam in (0.1, [0.1, 0.2]):
            with pytest.raises(ValueError, match=r"^L must be at most MAX_DEPTH = 1,000,000 layers"):
                _checks.layer_lambdas(lam, L)
        with pytest.raises(ValueError, match=r"^L must be at most MAX_DEPTH = 1,000,000 layers"):
            _checks.depth(L)
    assert _checks.depth(_checks.MAX_DEPTH) == _checks.MAX_DEPTH
    with pytest.raises(ValueError, match=r"^L must be a positive integer"):
        _checks.depth(0)
    lam = _checks.layer_lambdas(0.5, _checks.MAX_DEPTH)
    assert lam.shape == (10 ** 6,) and np.all(lam == 0.5)


def test_layer_lambdas_refuse_a_bad_decay_in_a_float64_array_as_in_a_list():
    """A float64 array of L decays, as the solvers' loops pass them, takes a quick path; a decay of 0 where decays
    must be positive, or an infinite one, is refused there as in a list, naming the decay's place."""
    for lam in (np.array([0.1, 0.2]), np.array([0.1, 0.0])):
        assert _checks.layer_lambdas(lam, 2, positive=False).tolist() == lam.tolist()
    got = _checks.layer_lambdas(np.array([0.1, 0.2]), 2)
    assert got.tolist() == [0.1, 0.2] == _checks.layer_lambdas([0.1, 0.2], 2).tolist()
    for bad, positive, words in (([0.1, 0.0], True, r"\[1\] must be strictly positive, got 0.0"),
                                 ([0.1, np.inf], True, r"\[1\] must be a finite positive number, got inf"),
                                 ([0.1, np.inf], False, r"\[1\] must be a finite non-negative number, got inf"),
                                 ([np.nan, 0.1], False, r"\[0\] must be a finite non-negative number, got nan"),
                                 ([-0.1, 0.1], False, r"\[0\] must be a finite non-negative number")):
        for lam in (bad, np.array(bad)):
            with pytest.raises(ValueError, match=rf"^lam_W{words}"):
                _checks.layer_lambdas(lam, 2, positive=positive)


def test_singular_values_refuse_a_value_below_kappa_range_in_every_form():
    """A nonzero kappa below KAPPA_RANGE (kappa^2 would round to 0: a live mode read as kappa = 0) is refused as a
    float and in a float64 array, which take a quick path, as in a list; 0 and the range's ends are taken."""
    lo, hi = _checks.KAPPA_RANGE
    for bad in (1e-170, np.array([1e-170]), np.array([2.0, 1e-170]), [1e-170], 1e200, np.array([1e200])):
        with pytest.raises(ValueError, match=r"^kappa must hold 0 or values in \[1.49e-154, 1.34e\+154\]"):
            _checks.singular_values(bad)
    for good in (0.0, np.array([0.0, lo, hi]), lo):
        assert _checks.singular_values(good).tolist() == np.atleast_1d(good).tolist()


def test_array_reads_tensors_detached_and_refuses_ragged_input_by_name():
    """A numpy array comes back as it is; a torch tensor, also one that requires grad, as its values; nested lists
    numpy cannot read as one array raise a ValueError naming the argument, as do matrix and vector."""
    x = np.arange(6.0).reshape(2, 3)
    assert _checks.array(x, "x") is x
    torch = pytest.importorskip("torch")
    t = torch.tensor(x, requires_grad=True) * 2  # not a leaf: grad flows to it
    np.testing.assert_array_equal(_checks.array(t, "x"), 2 * x)
    np.testing.assert_array_equal(_checks.matrix(t, "x"), 2 * x)
    np.testing.assert_array_equal(_checks.vector(t[0], "x"), [0.0, 2.0, 4.0])
    for check in (_checks.array, _checks.matrix, _checks.vector):
        with pytest.raises(ValueError, match=r"^x must"):
            check([[1.0, 2.0], [3.0]], "x")


def test_path_arg_gives_the_text_of_a_path_and_refuses_the_rest_by_name(tmp_path):
    assert _checks.path_arg(tmp_path, "where", "a folder") == str(tmp_path)
    assert _checks.path_arg("runs", "where", "a folder") == "runs"
    assert _checks.path_arg(" ", "where", "a folder") == " "  # a blank name is a name, unless blank=False
    for bad in ("", 5, ["a"], b"runs", None):
        with pytest.raises(ValueError, match="^where must be a folder"):
            _checks.path_arg(bad, "where", "a folder")
    with pytest.raises(ValueError, match="^where must be a folder .*nor blank"):
        _checks.path_arg(" ", "where", "a folder", blank=False)


@pytest.mark.parametrize("bad", ["", 5, ["a"], b"x"])
def test_every_path_argument_is_refused_by_its_name(bad):
    # the four checks of a path argument, one function (path_arg): each names its own argument
    from nclib import locks, parameters, provenance

    for call, name in ((locks.run_folder_path, "run_dir"), (locks.read_lock_file, "path"),
                       (parameters.check_out_dir, "out_dir"), (provenance.git_state, "root")):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            call(bad)
    with pytest.raises(ValueError, match="^out_dir must be"):  # blank too: no folder is named so
        parameters.check_out_dir("  ")


def test_real_dtype_takes_floats_and_integers_and_refuses_bools_complex_text_objects():
    for dtype in (np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.uint64):
        assert _checks.real_dtype(np.dtype(dtype)), dtype
    for dtype in (np.bool_, np.complex64, np.complex128, np.str_, np.bytes_, object, "datetime64[s]"):
        assert not _checks.real_dtype(np.dtype(dtype)), dtype
    # the samples, weights and numbers read through it refuse what it refuses, by name
    with pytest.raises(ValueError, match="features"):
        _samples.features(np.ones((2, 2), dtype=complex))
    with pytest.raises(ValueError, match="X"):
        _samples.peak_exponent(np.array([True, False]))
    assert not _checks.real_number(np.complex128(1)) and _checks.real_number(np.uint8(3))


def test_one_per_folder_takes_an_ordered_entry_per_folder():
    """One entry per run folder, in the folders' order: a list, a tuple or an array, returned as a list."""
    fits = lambda x: x in ("cpu", "cuda", None)  # noqa: E731
    assert _checks.one_per_folder(("cpu", None), "devices", "device", 2, fits) == ["cpu", None]
    assert _checks.one_per_folder(np.array(["cpu", "cuda"]), "devices", "device", 2, fits) == ["cpu", "cuda"]
    got = [{"a": 1}]
    out = _checks.one_per_folder(got, "plist", "dict", 1, lambda q: isinstance(q, dict))
    assert out == got and out is not got and out[0] is got[0]


@pytest.mark.parametrize("values", ["cc", b"cc", {"cpu": 1, "cuda": 2}, {"cpu", "cuda"}, (x for x in "ab"), None,
                                    ["cpu"], ["cpu", "cuda", "cpu"], ["cpu", "tpu"]])
def test_one_per_folder_refuses_by_name(values):
    """A str, bytes or mapping (one value for all the folders), a set (no order), a generator or None (no sequence),
    the wrong count and an entry that does not fit: a ValueError naming the argument."""
    with pytest.raises(ValueError, match=r"^devices must hold one device per run folder"):
        _checks.one_per_folder(values, "devices", "device", 2, lambda x: x in ("cpu", "cuda", None))
