"""Storage re-encodings read as the function reads them (freqprint.io.canonical): int8 / uint8
with scale and zero point, and float8, are dequantized before either channel tests a tensor; an
unrelated model stored the same way is still not found."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from conftest import small_owner
from freqprint import OwnerInit, extract, lineage, verify
from freqprint.io.canonical import canonical, companion, readable
from freqprint.io.checkpoint import open_tensors

SECRET = "canonical owner"


def _int8(sd: dict[str, torch.Tensor], naming: str = "{name}_scale") -> dict[str, torch.Tensor]:
    """Every conv weight stored as int8 with a per-output-channel scale (the common symmetric scheme)."""
    out: dict[str, torch.Tensor] = {}
    for name, w in sd.items():
        if w.ndim == 4 and w.is_floating_point():
            s = w.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / 127
            out[name] = torch.round(w / s[:, None, None, None]).to(torch.int8)
            out[naming.format(name=name, prefix=name.rpartition(".")[0])] = s
        else:
            out[name] = w.contiguous()
    return out


def _uint8(sd: dict[str, torch.Tensor], zero_point: bool) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, w in sd.items():
        if w.ndim == 4 and w.is_floating_point():
            s = w.abs().max().clamp_min(1e-12) / 127
            out[name] = (torch.round(w / s) + 128).to(torch.uint8)
            out[f"{name}_scale"] = s.reshape(1)
            if zero_point:
                out[f"{name}_zero_point"] = torch.tensor([128], dtype=torch.uint8)
        else:
            out[name] = w.contiguous()
    return out


def _padded(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every 3×3 conv stored 5×5, zero-padded (the thief's conv padding grows by one: the same
    function), plus an unused 3×3 decoy where the module was."""
    out = {
        k: (torch.nn.functional.pad(v, (1, 1, 1, 1)) if v.ndim == 4 and v.shape[-1] == 3 else v.contiguous())
        for k, v in sd.items()
    }
    out["conv2.fingerprint.decoy"] = torch.randn_like(sd["conv2.fingerprint.weight"])
    return out


def _float8(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.to(torch.float8_e4m3fn) if v.ndim == 4 and v.is_floating_point() else v.contiguous()) for k, v in sd.items()}


@pytest.fixture(scope="module")
def owner():
    model, recipe = small_owner(SECRET, filters=32, width=16)
    torch.manual_seed(1)
    with torch.no_grad():  # a little training drift, so nothing is read at its exact initial value
        for p in model.parameters():
            p.add_(0.05 * p.std() * torch.randn_like(p) if p.numel() > 1 else torch.zeros_like(p))
    key = extract(model, secret=SECRET)
    init = OwnerInit("smallcnn", {"num_classes": 10, "in_channels": 1, "width": 16}, 0, True)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return key, init, sd


def test_companions_are_found_under_the_names_formats_use():
    names = {"a.weight", "a.weight_scale", "b.weight", "b.scale", "c.weight._data", "c.weight._scale", "d.weight"}
    assert companion("a.weight", names, "scale") == "a.weight_scale"
    assert companion("b.weight", names, "scale") == "b.scale"
    assert companion("c.weight._data", names, "scale") == "c.weight._scale"
    assert companion("d.weight", names, "scale") is None
    assert readable(torch.int8) and readable(torch.uint8) and readable(torch.float8_e4m3fn)
    assert not readable(torch.int64) and not readable(torch.bool)


def test_a_zero_padded_kernel_is_read_back_by_its_crop_view():
    from freqprint.io.canonical import crop, crop_views

    w = torch.randn(4, 3, 3, 3)
    for pad in [(1, 1, 1, 1), (2, 0, 0, 2), (0, 4, 3, 1)]:  # any placement inside the larger kernel
        big = torch.nn.functional.pad(w, pad)
        assert torch.equal(crop(big, 3), w)
    views = crop_views({"a": ((4, 3, 7, 7), True), "b": ((4, 3, 3, 3), True), "c": ((4, 3, 5, 5), False)})
    assert views == {"a@crop3": ("a", 3), "a@crop5": ("a", 5)}  # odd sizes below 7; unreadable and 3×3 tensors none
    store = open_tensors({"a": torch.nn.functional.pad(w, (1, 1, 1, 1))})
    assert store.shapes["a@crop3"] == ((4, 3, 3, 3), True) and torch.equal(store.get("a@crop3"), w)


def test_dequantization_recovers_the_weights():
    w = torch.randn(6, 4, 3, 3)
    sd = _int8({"x.weight": w})
    back = canonical("x.weight", sd["x.weight"], sd.__getitem__, sd)
    assert (back - w).abs().max() <= sd["x.weight_scale"].max() / 2 + 1e-6
    for zp, at_least in ((True, 0.999), (False, 0.99)):  # with a zero point; centred on the median without one
        su = _uint8({"x.weight": w}, zero_point=zp)
        back = canonical("x.weight", su["x.weight"], su.__getitem__, su)
        assert torch.nn.functional.cosine_similarity(back.flatten(), w.flatten(), dim=0) > at_least
    odd = {"x.weight": sd["x.weight"], "x.weight_scale": torch.ones(5)}  # a scale that fits no axis is not applied
    assert torch.equal(canonical("x.weight", odd["x.weight"], odd.__getitem__, odd), sd["x.weight"].float())


@pytest.mark.parametrize(
    "encode",
    [
        lambda sd: _int8(sd),
        lambda sd: _int8(sd, "{prefix}.weight_scale"),
        lambda sd: _uint8(sd, zero_point=True),
        lambda sd: _uint8(sd, zero_point=False),
        _float8,
        _padded,
        lambda sd: _int8(_padded(sd)),
    ],
    ids=["int8+scale", "int8+weight_scale", "uint8+zero_point", "uint8", "float8", "5x5+decoy", "5x5+int8"],
)
def test_a_requantized_copy_is_found_by_both_channels(owner, encode, tmp_path):
    key, init, sd = owner
    path = tmp_path / "q.safetensors"
    save_file(encode(sd), str(path))
    assert open_tensors(path).shapes["conv2.fingerprint.weight"][1]  # listed as a tensor that may hold weights
    rep = verify(key, path)
    assert rep.found and rep.log10_p < -30, rep.summary()
    lin = lineage(init, path)
    assert lin.found and lin.log10_p < -30


@pytest.mark.parametrize("encode", [_int8, _padded, _float8], ids=["int8", "5x5+decoy", "float8"])
def test_an_unrelated_model_stored_the_same_way_is_not_found(owner, encode, tmp_path):
    key, init, _ = owner
    model, _ = small_owner("someone else", filters=32, width=16)
    torch.manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * p.std().clamp_min(0.01))  # another initialisation as well
    path = tmp_path / "other.safetensors"
    save_file(encode({k: v.detach().clone() for k, v in model.state_dict().items()}), str(path))
    assert not verify(key, path).found
    assert not lineage(init, path).found


def test_producer_counts_equal_the_listed_producers_and_products():
    """``producer_counts`` counts the products Q·Y without listing them: the same numbers as
    counting every stored producer and every product of ``composed_producers``, on random files."""
    import random

    from freqprint.io.canonical import _producer, composed_producers, producer_counts

    rng = random.Random(0)
    for _ in range(500):
        shapes = {}
        for i in range(rng.randint(0, 12)):
            dims = [rng.choice([1, 2, 3, 4, 8, 16]) for _ in range(2)]
            shape = tuple(dims + ([1, 1] if rng.random() < 0.5 else [3, 3])) if rng.random() < 0.8 else tuple(dims)
            shapes[f"t{i}" + ("@merge:x" if rng.random() < 0.1 else "")] = (shape, rng.random() < 0.9)
        listed: dict[int, int] = {}
        for name, (shape, ok) in shapes.items():
            if _producer(name, shape, ok):
                listed[shape[0]] = listed.get(shape[0], 0) + 1
        for *_, a in composed_producers(shapes):
            listed[a] = listed.get(a, 0) + 1
        assert producer_counts(shapes) == listed


def test_candidate_count_equals_the_listing():
    """The verifier's early path counts the readings a file may give (``candidate_count``) instead
    of listing them: the same number as ``len(candidates(...))`` on random files with every kind of
    view (crops of larger kernels, separable pairs, pieces, 1×1 maps for compositions)."""
    import random
    from types import SimpleNamespace

    from freqprint.io.checkpoint import TensorStore
    from freqprint.verification.verifier import candidate_count, candidates

    rng = random.Random(1)
    for _ in range(300):
        c = rng.choice([4, 8])
        key = SimpleNamespace(channels=c, kernel_size=3, filters=rng.choice([4, 8]), layer="t0")
        shapes = {}
        for i in range(rng.randint(0, 14)):
            dims = [rng.choice([1, 2, 3, 4, 8, 16]) for _ in range(2)]
            tail = rng.choices([[1, 1], [3, 3], [5, 5], [3, 1], [1, 3], []], weights=[30, 40, 10, 5, 5, 10])[0]
            shapes[f"t{i}"] = (tuple(dims + tail), rng.random() < 0.9)
        listed = len(candidates(TensorStore(shapes, None, "f"), key, merges=False, cap=False))
        assert candidate_count(TensorStore(shapes, None, "f"), key) == listed


def _may_copy_reference(c: torch.Tensor) -> bool:
    """One product at a time, every pair of rows: a dead row, or two unit rows within 1e-4."""
    size = c.norm(dim=1)
    if len(c) < 2:
        return False
    if not bool((size > 1e-12 * size.max()).all()):
        return True
    u = c / size[:, None]
    return bool(((u[:, None] - u[None]).abs().amax(2) <= 1e-4).fill_diagonal_(False).any())


def test_the_batched_copy_screen_equals_the_one_product_screen():
    """channel_merges screens all products of one 1×1 map in one sort (_may_copy_each); it must
    say of each product what a check of every pair of its rows says: parallel rows, dead rows,
    near misses."""
    from freqprint.io.canonical import _may_copy_each

    g = torch.Generator().manual_seed(0)
    for t in range(200):
        a = int(torch.randint(1, 40, (1,), generator=g))
        c = torch.randn(6, a, 3, generator=g, dtype=torch.float64)
        if a > 2 and t % 4 == 1:
            c[::2, 1] = 2.5 * c[::2, 0]  # a positively parallel pair in every other product
        if a > 2 and t % 4 == 2:
            c[1::2, 2] = 0.0  # a dead row
        if a > 2 and t % 4 == 3:
            c[:, 1] = 2.5 * c[:, 0] + 1e-3  # close, not parallel
        assert _may_copy_each(c.transpose(1, 2).contiguous()) == [_may_copy_reference(c[i]) for i in range(6)]


def test_near_pairs_are_the_sorted_neighbours_within_eight_that_agree():
    """:func:`_near` (one batched comparison) lists exactly the pairs a loop over the 8 successors
    in sorted order lists, ties and short inputs included."""
    from freqprint.io.canonical import _near

    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 3, 9, 10, 40, 200):
        for _ in range(5):
            coords = torch.randint(0, 3, (n, 3), generator=g).double() * 6e-5
            order = torch.sort(coords[:, 0], stable=True).indices
            want = {
                (int(order[p]), int(order[p + s]))
                for s in range(1, 9)
                for p in range(n - s)
                if float((coords[order[p]] - coords[order[p + s]]).abs().max()) <= 1e-4
            }
            got = {(int(a), int(b)) for x, y in _near(coords) for a, b in zip(x, y)}
            assert got == want


def test_near_any_flags_exactly_the_tensors_near_would_find_a_pair_in():
    """:func:`_near_any` (every tensor's rows in one sort) flags a tensor exactly when
    :func:`_near` on it alone lists a pair: no pair across tensors, none lost to the others' rows."""
    from freqprint.io.canonical import _near, _near_any

    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        coords = [
            torch.randint(0, 4, (int(torch.randint(1, 30, (1,), generator=g)), 3), generator=g).double() * 7e-5
            + torch.rand(1, generator=g).double() * 1e-3
            for _ in range(int(torch.randint(1, 6, (1,), generator=g)))
        ]
        assert _near_any(coords) == [bool(_near(c)) for c in coords]


def test_the_windowed_copy_screen_misses_no_copy_group():
    """channel_merges screens each producer's rows on a window of their entries (64 of them),
    then decides on whole rows (copy_groups).  It must find every producer copy_groups finds on
    whole rows — copies, dead rows, rows dead on the window alone — and no producer whose rows
    are proportional on the window alone."""
    from freqprint.io.canonical import WINDOW, _window, channel_merges, copy_groups

    g = torch.Generator().manual_seed(3)
    shapes, tensors, want = {}, {}, set()
    for i in range(48):
        n, m = int(torch.randint(3, 40, (1,), generator=g)), [20, 64, 65, 300, 1152][i % 5]
        rows = torch.randn(n, m, generator=g)
        cols = _window(m)
        kind = i % 6
        if kind == 1:
            rows[2] = 2.5 * rows[0]  # a channel stored twice
        elif kind == 2:
            rows[1] = 0.0  # a dead channel
        elif kind == 3 and cols is not None:
            rows[1, cols] = 0.0  # zero on the window, alive elsewhere: not dead
        elif kind == 4 and cols is not None:
            rows[1, cols] = 3.0 * rows[0, cols]  # proportional on the window alone: no copy
        elif kind == 5:
            rows[1] = 2.5 * rows[0] + 1e-3 * torch.randn(m, generator=g)  # close, not a copy
        name = f"p{i}.weight"
        tensors[name], shapes[name] = rows, ((n, m), True)
        tensors[f"c{i}.weight"], shapes[f"c{i}.weight"] = torch.randn(5, n, generator=g), ((5, n), True)
        if copy_groups(rows) is not None:
            want.add(name)
    assert WINDOW == 64 and want and len(want) < 48
    found: set[str] = set()
    channel_merges(shapes, tensors.__getitem__, found)
    assert {f for f in found if f.startswith("p")} == want
