"""Structural rewrites read canonically (issue 25): channels stored twice with their consumers
split ``[W + N, −N]`` (Net2Wider), a module kernel stored larger with content the low-pass input
cannot see, and layers factorised by 1×1 convs on both channel sides.  Each rewrite is checked for
exactness on the network's outputs first, then against both channels; unrelated models rewritten
the same way stay unfound."""

from __future__ import annotations

import copy
import math
import zlib

import pytest
import torch

from conftest import small_owner
from freqprint import OwnerInit, extract, lineage, verify
from freqprint.attacks import Compose, Factorize, RemoveModule, Separate, SpaceToDepth, Widen
from freqprint.attacks.reparam import separated
from freqprint.fingerprint import FingerprintModule, get_fingerprint_module
from freqprint.io.canonical import (
    DEPTH_TO_SPACE,
    MERGE,
    SEPARABLE,
    ChannelMerge,
    copy_groups,
    depth_to_space,
    separable,
    space_to_depth_kernel,
)
from freqprint.io.checkpoint import open_tensors
from freqprint.stats.spectral import band_reading, lowband_map
from freqprint.verification.backbone import _segment_logp
from freqprint.verification.verifier import candidates, merged_bound
from freqprint_bench.structural import mixed_segments

SECRET = "structural owner"
X = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def owner():
    model, _ = small_owner(SECRET, filters=32, width=16)
    model.train()
    with torch.no_grad():  # BatchNorm statistics of its own, so the copies carry a real scale
        for _ in range(3):
            model(torch.randn(32, 1, 28, 28))
    model.eval()
    init = OwnerInit("smallcnn", {"num_classes": 10, "in_channels": 1, "width": 16}, 0, True)
    return model, extract(model, secret=SECRET), init


def _exact(a: torch.nn.Module, b: torch.nn.Module) -> float:
    with torch.no_grad():
        return float((a(X) - b(X)).abs().max() / a(X).abs().max())


def test_copy_groups_find_proportional_rows_and_drop_dead_ones():
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(6, 9, generator=g)
    stored = torch.cat([rows, 2.5 * rows[:2], torch.zeros(1, 9)])  # rows 6, 7 copy 0, 1; row 8 is dead
    groups, weights = copy_groups(stored)
    assert groups == ((0, 6), (1, 7), (2,), (3,), (4,), (5,))
    assert weights[6] == pytest.approx(2.5 * weights[0])
    assert copy_groups(rows) is None  # nothing stored twice: no view
    assert copy_groups(-torch.cat([rows, -rows])) is None  # a negated copy is another channel after a ReLU
    w = torch.randn(4, 9, 3, 3, generator=g)
    merged = ChannelMerge("p", groups, weights).apply(w)
    assert merged.shape == (4, 6, 3, 3)
    assert torch.allclose(merged[:, 0], weights[0] * w[:, 0] + weights[6] * w[:, 6])


@pytest.mark.parametrize("noise", [3.0, 10.0])
def test_a_widened_copy_is_found_by_both_channels(owner, noise):
    model, key, init = owner
    wide = Widen(noise=noise, seed=1)(copy.deepcopy(model))
    assert _exact(model, wide) < 1e-5  # the same function
    assert wide.conv2.fingerprint.weight.shape[1] == 32  # no stored kernel is the module's
    rep = verify(key, wide)
    assert rep.found and rep.log10_p < -30 and MERGE in rep.layer, rep.summary()
    lin = lineage(init, wide)
    assert lin.found and lin.log10_p < -30


def test_the_early_count_bounds_the_merged_readings(owner):
    model, key, _ = owner
    store = open_tensors(Widen(seed=2)(copy.deepcopy(model)))
    plain = len(candidates(store, key, merges=False))
    merged = len(candidates(store, key))
    assert merged > plain  # the views exist...
    assert merged <= merged_bound(store, key)  # ...and the early path paid for at least as many


def test_a_widened_unrelated_model_is_not_found(owner):
    _, key, init = owner
    other, _ = small_owner("someone else", filters=32, width=16)
    torch.manual_seed(11)
    with torch.no_grad():
        for p in other.parameters():
            p.copy_(torch.randn_like(p) * p.std().clamp_min(0.01))
    wide = Widen(seed=3)(other)
    assert not verify(key, wide).found
    assert not lineage(init, wide).found


def test_band_reading_returns_the_kernel_behind_invisible_content():
    size, r = (28, 28), 1
    a5 = lowband_map(size, 5, r, include_dc=False)
    _, s, vh = torch.linalg.svd(a5)
    null = vh[int((s > 1e-9 * s[0]).sum()) :]
    assert null.shape[0] == 17  # what a 5×5 kernel can hold that the module never sees
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    w5 = torch.zeros(4, 3, 5, 5, dtype=torch.float64)
    w5[..., :3, :3] = w
    w5 += (torch.randn(4, 3, null.shape[0], dtype=torch.float64) @ null).reshape(4, 3, 5, 5) * 10
    back = band_reading(w5, 3, size, r, include_dc=False)
    a3 = lowband_map(size, 3, r, include_dc=False)
    # the same response, and the kernel itself up to its one invisible direction
    assert torch.allclose(back.reshape(4, 3, 9) @ a3.T, w5.reshape(4, 3, 25) @ a5.T, atol=1e-9)
    proj = torch.linalg.pinv(a3) @ a3
    assert torch.allclose(back.reshape(4, 3, 9), w.reshape(4, 3, 9) @ proj.T, atol=1e-9)


def test_a_module_stored_5x5_with_invisible_content_is_found(owner):
    model, key, _ = owner
    _, fp = get_fingerprint_module(model)
    a5 = lowband_map(fp.grid_size, 5, fp.radius, fp.include_dc)
    _, s, vh = torch.linalg.svd(a5)
    null = vh[int((s > 1e-9 * s[0]).sum()) :]
    w = fp.weight.detach().double()
    w5 = torch.zeros(*w.shape[:2], 5, 5, dtype=torch.float64)
    w5[..., :3, :3] = w
    w5 += (torch.randn(*w.shape[:2], null.shape[0], dtype=torch.float64) @ null).reshape(w5.shape) * 10 * float(w.std())
    big = FingerprintModule(fp.in_channels, fp.out_channels, fp.grid_size, fp.filters, 5, fp.radius, merge=fp.merge)
    with torch.no_grad():
        big.weight.copy_(w5.float())
        big.proj.load_state_dict(fp.proj.state_dict())
    h = torch.relu(torch.randn(4, fp.in_channels, 28, 28))
    with torch.no_grad():
        assert float((big(h) - fp(h)).abs().max()) < 1e-5 * float(fp(h).abs().max())  # the same module
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    sd["conv2.fingerprint.weight"] = w5.float()
    sd["conv2.fingerprint.decoy"] = torch.randn(fp.filters, fp.in_channels, 3, 3)  # and a 3×3 decoy beside it
    rep = verify(key, sd)
    assert rep.found and rep.log10_p < -30 and rep.layout == "band", rep.summary()


@pytest.mark.parametrize("chain", ["factorize-2", "remove+factorize-2", "remove+widen"])
def test_both_sided_factorisation_is_composed_back(owner, chain):
    model, _, init = owner
    attack = {
        "factorize-2": Factorize(sides=2, seed=4),
        "remove+factorize-2": Compose([RemoveModule(), Factorize(sides=2, seed=4)]),
        "remove+widen": Compose([RemoveModule(), Widen(seed=5)]),
    }[chain]
    stolen = attack(copy.deepcopy(model))
    if "remove" not in chain:
        assert _exact(model, stolen) < 1e-5
    lin = lineage(init, stolen)
    assert lin.found and lin.log10_p < -30


WIDEN_AND_FACTORISE = {
    "widen, then factorise both sides": lambda: Compose([Widen(seed=5), Factorize(sides=2, seed=4)]),
    "factorise both sides, then widen": lambda: Compose([Factorize(sides=2, seed=4), Widen(seed=5)]),
    "widen, then factorise the output side": lambda: Compose([Widen(seed=5), Factorize(sides=1, seed=4)]),
}


@pytest.mark.parametrize("order", sorted(WIDEN_AND_FACTORISE))
def test_widening_and_factorising_in_either_order_is_found_by_both_channels(owner, order):
    """The copies then live only in products: rows of ``M⁻¹·(M·W·Pᵀ)`` (io.canonical.composed_producers)
    and columns of the 1×1 ``P`` the next layer reads through (a merged view composed as its input
    side).  Names play no part: the same file with every tensor renamed is found too."""
    model, key, init = owner
    stolen = WIDEN_AND_FACTORISE[order]()(copy.deepcopy(model))
    assert _exact(model, stolen) < 1e-5
    rep = verify(key, stolen)
    assert rep.found and rep.log10_p < -30
    store = open_tensors({k: v.detach().clone() for k, v in stolen.state_dict().items()})
    bound = merged_bound(store, key)  # from shapes, before any producer or product is read
    assert len(candidates(store, key)) <= bound  # merged 1×1 views compose too: still paid for
    lin = lineage(init, stolen)
    assert lin.found and lin.log10_p < -30
    items = sorted(stolen.state_dict().items(), key=lambda kv: hash(kv[0]) % 97)
    renamed = {f"t{i:03d}": v.detach().clone() for i, (_, v) in enumerate(items)}
    assert lineage(init, renamed).log10_p < -30


def test_widening_then_factorising_after_removal_is_found_by_lineage(owner):
    """The chain that evaded both channels (BENCHMARKS §8b before 0.7): module removed, then the
    network widened and factorised — the module is gone, the backbone is read through the products."""
    model, _, init = owner
    stolen = Compose([RemoveModule(), Widen(seed=5), Factorize(sides=2, seed=4)])(copy.deepcopy(model))
    lin = lineage(init, stolen)
    assert lin.found and lin.log10_p < -30


def test_a_factorisation_split_over_two_1x1_convs_is_found_by_lineage(owner):
    """``M⁻¹`` and ``P`` each stored as two 1×1 convs: no composition of one 1×1 map per side
    undoes it, but the segment map does (any invertible mixing fitted on half the kernel
    positions, tested on the others), named or renamed; the module is not factorised by this
    attack, so the fingerprint finds it too."""
    model, key, init = owner
    stolen = Factorize(sides=2, split=2, seed=4)(copy.deepcopy(model))
    assert _exact(model, stolen) < 1e-5
    assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) for m in stolen.modules()) >= 4 * 3
    rep = verify(key, stolen)
    assert rep.found and rep.log10_p < -30
    lin = lineage(init, stolen)
    assert lin.found and lin.log10_p < -30
    assert "segment" in {r.channel_map for r in lin.layers if r.log10_p < -30}
    items = sorted(stolen.state_dict().items(), key=lambda kv: zlib.crc32(kv[0].encode()))
    renamed = {f"t{i:03d}": v.detach().clone() for i, (_, v) in enumerate(items)}
    assert lineage(init, renamed).log10_p < -30


@pytest.mark.parametrize("maps", [1, 3])
def test_any_invertible_mixing_of_a_linear_segment_is_found_by_lineage(owner, maps):
    """The group, not the list: Q and P of condition number 10, their inverses stored in any
    number of 1×1 maps (three per side here: no product of stored tensors is the original)."""
    model, _, init = owner
    lin = lineage(init, mixed_segments(model, maps, 10.0, seed=maps))
    assert lin.found and lin.log10_p < -30


def test_the_segment_map_is_exact_against_independent_layers():
    """Sample splitting over kernel positions: over 300 independent (θ₀, suspect) pairs — and
    suspects that are a mixing of another θ₀ — ``P[p ≤ a] ≤ a`` holds for the segment option."""
    g = torch.Generator().manual_seed(0)
    v = 1 / 3  # U(−1, 1)
    ps = []
    for i in range(300):
        x = torch.rand(16, 12, 9, generator=g, dtype=torch.float64) * 2 - 1
        y = torch.rand(16, 12, 9, generator=g, dtype=torch.float64) * 2 - 1
        if i % 2:  # a mixed suspect: what the fit is built to undo, of the wrong θ₀
            y = torch.einsum(
                "de,ecm,cf->dfm",
                torch.randn(16, 16, generator=g, dtype=torch.float64),
                y,
                torch.randn(12, 12, generator=g, dtype=torch.float64),
            )
        ps.append(_segment_logp(x, v, y)[0] / math.log(10))
    p = torch.tensor(ps)
    for a in (0.01, 0.05, 0.2):
        assert float((p <= math.log10(a)).double().mean()) <= a + 3 * math.sqrt(a * (1 - a) / 300)
    x = torch.rand(16, 12, 9, generator=g, dtype=torch.float64) * 2 - 1
    mixed = torch.einsum(
        "de,ecm,cf->dfm",
        torch.randn(16, 16, generator=g, dtype=torch.float64),
        x,
        torch.randn(12, 12, generator=g, dtype=torch.float64),
    )
    assert _segment_logp(x, v, mixed)[0] / math.log(10) < -30  # and a mixing of the right θ₀ is found


def test_a_conv_stored_as_a_kx1_then_a_1xk_conv_is_read_back(owner):
    """Every k×k conv separated into a k×1 conv into C·k channels (mixed by an orthogonal R) and
    a 1×k conv: exact, and no stored tensor is k×k.  Lineage reads the pair's product
    (io.canonical.separable_views), named and renamed, also with the module removed first."""
    model, key, init = owner
    stolen = Separate(seed=3)(copy.deepcopy(model))
    assert _exact(model, stolen) < 1e-5
    backbone = [k for k, v in stolen.state_dict().items() if v.ndim == 4 and "fingerprint" not in k]
    assert all(min(stolen.state_dict()[k].shape[2:]) == 1 for k in backbone)
    assert verify(key, stolen).found
    lin = lineage(init, stolen)
    assert lin.found and lin.log10_p < -30
    assert any(SEPARABLE in (r.suspect_layer or "") for r in lin.layers if r.log10_p < -30)
    items = sorted(stolen.state_dict().items(), key=lambda kv: zlib.crc32(kv[0].encode()))
    assert lineage(init, {f"t{i:03d}": v.detach().clone() for i, (_, v) in enumerate(items)}).log10_p < -30
    removed = Compose([RemoveModule(), Separate(seed=3)])(copy.deepcopy(model))
    assert lineage(init, removed).log10_p < -30


def test_a_module_stored_as_a_kx1_and_a_1xk_kernel_is_found(owner):
    """The module's own kernel stored as two tensors whose product it is (the thief's forward runs
    both): the verifier reads the pair's product like any tensor."""
    model, key, _ = owner
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    name = next(k for k in sd if k.endswith("fingerprint.weight"))
    w = sd.pop(name).double()
    n = w.shape[1] * w.shape[2]
    r = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(7), dtype=torch.float64))[0]
    first, second = separated(w, r)
    sd["aux.rows"], sd["aux.cols"] = first.float(), second.float()
    assert torch.allclose(separable(sd["aux.cols"], sd["aux.rows"]), w, atol=1e-5)
    rep = verify(key, sd)
    assert rep.found and rep.log10_p < -30


def test_an_unrelated_model_separated_or_unshuffled_stays_unfound(owner):
    _, key, init = owner
    other, _ = small_owner("someone else", filters=32, width=16)
    torch.manual_seed(11)
    for m in other.modules():  # another θ₀ for the backbone, too
        if isinstance(m, torch.nn.Conv2d):
            m.reset_parameters()
    for attack in (Separate(seed=3), SpaceToDepth()):
        stolen = attack(copy.deepcopy(other))
        assert not lineage(init, stolen).found
        assert not verify(key, stolen).found


def test_a_conv_run_on_a_space_to_depth_grid_is_read_back(owner):
    """Every stride-1 k×k conv run on its input pixel-unshuffled by 2 with the re-indexed
    ``[4D, 4C, k′, k′]`` kernel, its output shuffled back: exact, no stored tensor has W's shape,
    and lineage reads the kernels back through the ``@d2s`` views (a 3×3 as a 5×5 with a zero
    ring, then its crop), also with the module removed first."""
    model, key, init = owner
    stolen = SpaceToDepth()(copy.deepcopy(model))
    assert _exact(model, stolen) < 1e-5
    assert verify(key, stolen).found
    lin = lineage(init, stolen)
    assert lin.found and lin.log10_p < -30
    assert any(DEPTH_TO_SPACE in (r.suspect_layer or "") for r in lin.layers if r.log10_p < -30)
    removed = Compose([RemoveModule(), SpaceToDepth()])(copy.deepcopy(model))
    assert lineage(init, removed).log10_p < -30


def test_a_module_stored_for_a_space_to_depth_grid_is_found_and_ordinary_tensors_are_refused(owner):
    """The module's kernel stored re-indexed (the thief's forward unshuffles around it) is found;
    an ordinary tensor whose widths divide by 4 is no re-indexed kernel: its view reads as NaN."""
    model, key, _ = owner
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    name = next(k for k in sd if k.endswith("fingerprint.weight"))
    w = sd.pop(name)
    sd["aux.unshuffled"] = space_to_depth_kernel(w)[0].float()
    rep = verify(key, sd)
    assert rep.found and rep.log10_p < -30
    assert torch.isnan(depth_to_space(torch.randn(16, 16, 3, 3))).all()
    store = open_tensors({"t": torch.randn(16, 16, 3, 3)})
    assert f"t{DEPTH_TO_SPACE}" in store.shapes and torch.isnan(store.get(f"t{DEPTH_TO_SPACE}")).all()


def test_widening_then_a_split_factorisation_is_an_open_member(owner):
    """An open member (docs/design.md): widened, then factorised with two 1×1 convs per side.
    The copies live only in products of two stored maps with the core, which no reading forms,
    and the widened core is not among the candidates lineage fits; the module is not factorised,
    so the fingerprint still finds it.  When this starts to fail, the member is closed: update
    docs/design.md and §8b."""
    model, key, init = owner
    stolen = Compose([Widen(seed=5), Factorize(sides=2, split=2, seed=4)])(copy.deepcopy(model))
    assert _exact(model, stolen) < 1e-5
    assert verify(key, stolen).found
    assert not lineage(init, stolen).found


def test_an_unrelated_model_widened_and_factorised_stays_unfound(owner):
    """The products and merged views a widened, factorised file offers are paid for: an
    independent model rewritten the same way is not found by either channel."""
    _, key, init = owner
    other, _ = small_owner("someone else", filters=32, width=16)
    stolen = Compose([Widen(seed=5), Factorize(sides=2, seed=4)])(copy.deepcopy(other))
    assert not verify(key, stolen).found
    # small_owner seeds every backbone with 0: an owner whose θ₀ came from seed 5 is unrelated to it
    assert lineage(OwnerInit(init.model, init.kwargs, 5, True), stolen).log10_p == 0.0


@pytest.mark.parametrize("name", ["nope∘conv3.weight", "conv3.weight⋄nope", "x@merge:conv1.weight", "conv4.weight@crop3"])
def test_tensor_names_that_look_like_readings_are_only_names(owner, name):
    """Composed and viewed readings are labelled, never parsed back from names: a thief's tensor
    called like one is read as itself, and nothing crashes on the full search of an unrelated model."""
    _, key, init = owner
    other, _ = small_owner("someone else", filters=32, width=16)
    sd = {k: v.detach().clone() for k, v in other.state_dict().items()}
    sd[name] = torch.randn(32, 16, 3, 3)
    assert not verify(key, sd).found
    assert not lineage(OwnerInit(init.model, init.kwargs, 5, True), sd).found


def _cut(sd: dict[str, torch.Tensor], name: str, dim: int, pieces: int) -> dict[str, torch.Tensor]:
    """``name`` stored as ``pieces`` tensors along ``dim`` (the thief's code concatenates the
    outputs of filter pieces and sums those of channel pieces), under unrelated names."""
    out = {k: v for k, v in sd.items() if k != name}
    for i, piece in enumerate(torch.chunk(sd[name], pieces, dim)):
        out[f"shard{i:03d}.{name.replace('.', '_')}"] = piece.clone()
    return out


@pytest.mark.parametrize(
    ("dim", "pieces"), [(0, 4), (0, 32), (1, 4), (1, 16)], ids=["filters/4", "filters/32", "channels/4", "channels/16"]
)
def test_a_tensor_stored_in_pieces_is_read_whole(owner, dim, pieces):
    model, key, init = owner
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cut = _cut(sd, "conv2.fingerprint.weight", dim, pieces)
    rep = verify(key, cut)
    assert rep.found and rep.log10_p < -30 and rep.layer.startswith("@join"), rep.summary()
    for layer in ("conv3.weight", "conv4.weight"):
        cut = _cut(cut, layer, dim, pieces)
    cut.pop("conv2.base.weight")  # and the module gone: lineage alone, on the pieces
    lin = lineage(init, cut)
    assert lin.found and lin.log10_p < -30


@pytest.mark.parametrize("sides", ["input", "output", "both"])
def test_a_module_factorised_by_inserted_1x1_convs_is_composed_back(owner, sides):
    """The thief's forward mixes the module's input channels by P before it (``W·Pᵀ`` stored) and
    its filters by M, undone by ``Mᵀ`` before the ReLU (``M·W`` stored): exact, and no stored
    tensor is W up to permutation and scale."""
    model, key, _ = owner
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    w = sd.pop("conv2.fingerprint.weight").double()
    g = torch.Generator().manual_seed(9)
    p = torch.linalg.qr(torch.randn(w.shape[1], w.shape[1], generator=g, dtype=torch.float64))[0]
    m = torch.linalg.qr(torch.randn(w.shape[0], w.shape[0], generator=g, dtype=torch.float64))[0]
    if sides in ("input", "both"):
        w = torch.einsum("dchw,ec->dehw", w, p)
        sd["aux.feed"] = p[:, :, None, None].float()
    if sides in ("output", "both"):
        w = torch.einsum("ed,dchw->echw", m, w)
        sd["aux.unmix"] = m.T.contiguous().float()
    sd["aux.kernel"] = w.float()
    rep = verify(key, sd)
    assert rep.found and rep.log10_p < -30 and "aux.kernel" in rep.layer and rep.layer != "aux.kernel", rep.summary()


def test_a_family_member_is_screened_in_any_layout(owner):
    """The screen that picks one member of a family of canonical readings reads merged views and
    compositions under the symmetries of the square too (a family of a transformed reading)."""
    from freqprint.stats.align import descriptor, read_as, unit
    from freqprint.verification.backbone import _screen, _screen_reading

    model, _, init = owner
    wide = Widen(seed=5)(copy.deepcopy(model))
    store = open_tensors({k: v.detach().clone() for k, v in wide.state_dict().items()})
    store.add_channel_merges()
    view = next(v for v in store.shapes if v.startswith("conv3.weight" + MERGE))
    x = init.layers()["conv3.weight"].weight
    desc = descriptor(unit(x.reshape(x.shape[0], x.shape[1], -1)))
    for layout in ("OIHW", "OIHW·rot90", "OIHW·T"):
        got = _screen_reading(store, {}, desc, x.shape[1], 3, view, layout)
        want = _screen(desc, read_as(store.get(view), layout, x.shape[1], 3).to(torch.float64))
        assert got == pytest.approx(want) and got == got
    assert _screen_reading(store, {}, desc, x.shape[1], 3, view, "OIHW") > _screen_reading(
        store, {}, desc, x.shape[1], 3, view, "OIHW·rot90"
    )


def test_a_merge_shared_by_several_producers_serves_each_of_them(owner):
    """Producers with the same copy groups share one merged view (it differs only by a scale per
    column); whichever comes first in the file, every consumer still gets a view — a layer is
    never left without one because the shared merge was labelled by the layer itself."""
    model, _, init = owner
    wide = Widen(seed=5)(copy.deepcopy(model))
    forward = {k: v.detach().clone() for k, v in wide.state_dict().items()}
    backward = dict(reversed(list(forward.items())))
    views = {}
    for order, sd in (("forward", forward), ("backward", backward)):
        store = open_tensors(sd)
        store.add_channel_merges()
        views[order] = {v.split(MERGE)[0] for v in store.shapes if MERGE in v}
        assert {"conv3.weight", "conv4.weight"} <= views[order]
    assert views["forward"] == views["backward"]
    assert lineage(init, backward).log10_p == pytest.approx(lineage(init, forward).log10_p, abs=1.0)
