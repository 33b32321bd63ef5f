"""``bench scale``: the performance and registry benchmarks of tracing at scale, each a ratio measured in
one run (docs/benchmarks.md §12).

* ``latency`` — verify latency per checkpoint against file size (1 MB … 1 GB: a derived module
  tensor among unrelated ones) vs the floor, the time to open the file and read just the tensor
  the verdict needs.  Goal ≤ 2× the floor.  The verdict (``describe=False``) is timed, with the
  described report beside it, for a suspect whose filters and channels were permuted (the
  thief's free rewrite: stage "one pass") and, at 1 MB and 1 GB, for one as trained ("diagonal").
* ``cost`` — cost per suspect of ours (the verdict from the file with the key loaded, as a
  scanner holds it; with the description; through a one-key registry) vs CKA
  (REEF: load the model, forward the probes, score) on the demo's models.  Goal ≥ 100× cheaper
  than CKA.  MetaV's column (load the model, query the N fingerprint inputs, run V) is filled
  when a classification claim is given (``metav_claim``: ``freqprint metav bench`` writes one);
  its one-off cost, training the ensemble, is in docs/benchmarks.md §13.
  ``cost-resnet18`` runs the full-width ResNet-18 rows of ``cost`` alone.
* ``registry`` — matching one suspect against 1, 100 and 10,000 registered keys (screen + full
  tests on the candidates), the registry's size on disk.  Goal < 1 s at 10,000 on 2 cores.
* ``million`` — one suspect against 1,000,000 keys (one real, the rest synthetic index rows from
  real W₀ draws: :mod:`freqprint_bench.million`), the registry's bytes per key, and the miss rate
  of its shortlist under noise.  Goal < 1 s per suspect, ≤ 10 KB of index per key.  Run by name
  only (a 3 GB registry).
* ``poisoning`` — keys a forger builds from innocent uploads (lifted modules, a conv layer passed
  off as a module, chimeras under the forger's own secret): innocent uploads accused when keys
  are registered bare and by the default rule (the secret checked, matches against W₀).  Goal 0.
* ``scan`` — files per second over the 200-checkpoint corpus: in-process, a local pool of 2, Ray
  with 1 and 2 workers (cluster start included).
* ``embedding`` — seconds per training epoch (the median of 3), plain (run first and last; the
  overheads are against their mean) vs fingerprinted (L_attack on the whole batch,
  on a quarter of it: ``attack_fraction``, and on a quarter of every k-th batch: ``attack_every``),
  with test accuracy, the fingerprint's p-value and τ-score, and what L_attack is for: the share
  of test images sent to the pseudo class once the module's W is overwritten.  Goal ≤ 25 %
  overhead.

Timings are medians of repeats after a warm-up (the page cache is warm).  Keys for the registry
benchmark are real anchored keys of a 32-filter module on 16 channels (a SmallCNN of width 16),
built from secrets ``reg-0``, ``reg-1``, …
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import safe_open, save_file

from freqprint_bench.report import median_seconds

__all__ = ["BENCHES", "run_scale_bench", "scale_markdown"]

BENCHES = ("latency", "cost", "cost-resnet18", "registry", "poisoning", "scan", "embedding", "million", "probe")


def _owner(secret: str, width: int, filters: int):
    from freqprint_bench.corpus import owner_model

    return owner_model(secret, width, filters)


def _derived(model, seed: int = 1):
    from freqprint.attacks import Compose, ModulePermutation
    from freqprint.attacks.equivariance import BlockPermutation

    return Compose([BlockPermutation(seed=seed), ModulePermutation(seed=seed)])(model)


def bench_latency(work: Path, sizes_mb: tuple[int, ...] = (1, 10, 100, 1000), log=print, permuted: bool = True) -> dict[str, Any]:
    from freqprint.verification.key import extract
    from freqprint.verification.verifier import verify

    owner = _owner("latency-owner", 32, 256)
    key = extract(owner, secret="latency-owner")
    sd = {k: v.contiguous() for k, v in (_derived(owner) if permuted else owner).state_dict().items()}
    module = "conv2.fingerprint.weight"
    rows: list[dict[str, Any]] = []
    for mb in sizes_mb:
        path = work / f"latency-{mb}mb-{'permuted' if permuted else 'as-trained'}.safetensors"
        pad = max(0, mb * 2**20 - sum(v.numel() * v.element_size() for v in sd.values()))
        extra = {
            f"unrelated.{i}": torch.randn(1000, 1000 if i < pad // 4_000_000 else max(1, (pad % 4_000_000) // 4000))
            for i in range(pad // 4_000_000 + (1 if pad % 4_000_000 >= 4000 else 0))
        }
        save_file({**sd, **extra}, str(path))
        del extra

        def floor() -> None:
            with safe_open(str(path), framework="pt") as f:
                f.get_tensor(module)

        t_floor = median_seconds(floor, 9)
        t_verify = median_seconds(lambda: verify(key, path, describe=False), 9)
        t_described = median_seconds(lambda: verify(key, path), 9)
        rep = verify(key, path, describe=False)
        rows.append(
            {
                "file_mb": round(path.stat().st_size / 2**20, 1),
                "floor_s": t_floor,
                "verify_s": t_verify,
                "ratio": t_verify / t_floor,
                "described_s": t_described,
                "found": rep.found,
                "log10_p": rep.log10_p,
                "stage": rep.stage,
            }
        )
        log(f"latency {rows[-1]}")
        path.unlink()
    return {
        "rows": rows,
        "goal": "verify <= 2x floor",
        "suspect": "permuted (filters and channels)" if permuted else "as trained",
    }


def bench_cost(demo_dir: Path, log=print, metav_claim: Path | None = None) -> dict[str, Any]:
    from freqprint.data import load_dataset
    from freqprint.io.checkpoint import load_model
    from freqprint.methods.base import MethodContext
    from freqprint.methods.representation import CKAFingerprint
    from freqprint.scan import KeyStore
    from freqprint.verification.key import FingerprintKey
    from freqprint.verification.verifier import verify

    key_path = demo_dir / "owner.key"
    owner, _ = load_model(demo_dir / "owner.safetensors")
    data = load_dataset("fashion-mnist", "test", limit=1000)
    cka = CKAFingerprint(layer="conv3")
    evidence = cka.extract(owner, MethodContext(secret="demo owner secret", num_classes=10, data=data))
    mv = None
    if metav_claim is not None and Path(metav_claim).is_file():
        from freqprint.metav import load_claim

        mv, _ = load_claim(metav_claim)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        reg = KeyStore(Path(tmp) / "r.db")
        reg.add(key_path, name="owner", secret="demo owner secret")  # the demo's OWNER_SECRET
        for name in ("finetuned", "independent"):
            path = demo_dir / f"{name}.safetensors"

            key = FingerprintKey.load(key_path)  # a scanner holds its keys loaded

            def ours() -> None:
                verify(key, path, describe=False)

            def described() -> None:
                verify(key, path)

            def registry() -> None:
                reg.match(path)

            def cka_cost() -> None:
                m, _ = load_model(path)
                cka.score(evidence, m)

            def metav_cost() -> None:
                m, _ = load_model(path)
                assert mv is not None  # timed only when MetaV was trained
                mv.verdict(m)  # the verdict: V, the agreement test and the reference rank

            t: dict[str, Any] = {
                "ours_verify_s": median_seconds(ours, 9),
                "ours_described_s": median_seconds(described),
                "ours_exhaustive_s": median_seconds(lambda: verify(key, path, describe=False, exhaustive=True)),
                "ours_registry_s": median_seconds(registry),
                "cka_s": median_seconds(cka_cost),
                "stage": verify(key, path, describe=False).stage,
            }
            t.update(
                suspect=name, cka_over_ours=t["cka_s"] / t["ours_verify_s"], metav_s=median_seconds(metav_cost) if mv else None
            )
            rows.append(t)
            log(f"cost {t}")
        reg.close()
    return {"rows": rows, "goal": "ours >= 100x cheaper than CKA", "metav_claim": str(metav_claim) if mv else None}


def bench_cost_resnet(work: Path, data_root: str | None = None, log=print) -> dict[str, Any]:
    """The same three costs on a full-width ResNet-18 (11 M parameters; the module at its paper
    placement, ``layer1.1.conv2``), where CKA's forward pass is no longer that of a toy CNN.  Cost
    does not depend on training, so the owner is freshly initialised; the derived suspect is the
    owner with every weight perturbed by 5 % noise (as fine-tuning would move it, file rewritten),
    the independent one another seed and secret."""
    from freqprint.data import load_dataset
    from freqprint.fingerprint import FingerprintConfig
    from freqprint.io.checkpoint import load_model, open_tensors, save_model
    from freqprint.methods.base import MethodContext
    from freqprint.methods.representation import CKAFingerprint
    from freqprint.scan import KeyStore
    from freqprint.verification.key import extract
    from freqprint.verification.verifier import verify
    from freqprint_bench.probe import resnet_owner as build

    recipe = {
        "model": "resnet18",
        "kwargs": {"num_classes": 10, "in_channels": 1, "width": 1.0},
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "pseudo_class": False,
        "fingerprint": FingerprintConfig(target="layer1.1.conv2", secret="resnet-owner").to_dict(),
    }
    owner = build("resnet-owner", 0)
    key = extract(owner, secret="resnet-owner")
    derived = build("resnet-owner", 0)
    with torch.no_grad():
        for prm in derived.parameters():
            prm.add_(0.05 * prm.std().nan_to_num(0.0) * torch.randn_like(prm))
    paths = {
        "derived (weights +5 % noise)": save_model(derived, work / "resnet-derived.safetensors", recipe),
        "independent": save_model(build("resnet-other", 1), work / "resnet-independent.safetensors", recipe),
    }
    key_path = key.save(work / "resnet.key")
    reg = KeyStore(work / "resnet.db")
    reg.add(key_path, name="owner", secret="resnet-owner")
    data = load_dataset("fashion-mnist", "test", root=data_root, limit=1000)
    cka = CKAFingerprint(layer="layer3")
    evidence = cka.extract(owner, MethodContext(secret="resnet-owner", num_classes=10, data=data))
    rows: list[dict[str, Any]] = []
    for name, path in paths.items():

        def cka_cost() -> None:
            m, _ = load_model(path)
            cka.score(evidence, m)

        last: dict[str, Any] = {}  # the timed calls' results: a slow call is not run again to read them

        def ours() -> None:
            last["rep"] = verify(key, path, describe=False)

        def registry() -> None:
            last["match"] = reg.match(path)

        def registry_whole() -> None:  # every reading sketched whole: the screen before 0.17
            reg.match(path, probe=0)

        def floor() -> None:  # the bytes a not-found screen needs: every tensor read once
            store = open_tensors(path)
            for n, (_, ok) in list(store.shapes.items()):
                if ok and "@" not in n:
                    store.get(n).sum()

        registry()  # the process's one-time set-up (the decoys' sketches of the key's shape), as a scan pays it once
        t: dict[str, Any] = {
            "suspect": name,
            "ours_verify_s": median_seconds(ours, 9, once_above=1.0),
            "ours_registry_s": median_seconds(registry, 7, once_above=1.0),
            "ours_registry_whole_s": median_seconds(registry_whole, 3, once_above=1.0),
            "read_floor_s": median_seconds(floor, 7),
            "cka_s": median_seconds(cka_cost, 3),
            "file_mb": path.stat().st_size / 2**20,
        }
        rep = last["rep"]
        t.update(
            stage=rep.stage,
            found=rep.found,
            fitted=rep.fitted,
            layers_searched=rep.layers_searched,
            registry_found=[m.key for m in last["match"].found],
        )
        t["cka_over_ours"] = t["cka_s"] / t["ours_verify_s"]
        t["registry_over_cka"] = t["ours_registry_s"] / t["cka_s"]
        rows.append(t)
        log(f"cost resnet18 {t}")
    reg.close()
    return {
        "rows": rows,
        "model": "resnet18 width 1, module on layer1.1.conv2 (256 filters, 64 channels); CKA on layer3, 100 probes",
    }


def _synthetic_key(i: int, filters: int, channels: int):
    from freqprint.fingerprint import initial_weight
    from freqprint.verification.key import extract

    secret = f"reg-{i}"
    sd = {
        "conv2.fingerprint.weight": initial_weight(secret, "conv2", filters, channels, 3),
        "conv2.fingerprint.grid": torch.tensor([28, 28, 3, 1, 1]),
    }
    return extract(sd, secret=secret)


def bench_registry(
    work: Path, sizes: tuple[int, ...] = (1, 100, 10_000), filters: int = 32, channels: int = 16, log=print
) -> dict[str, Any]:
    from freqprint.scan import KeyStore

    owner = _owner("reg-0", channels, filters)
    derived, unrelated = work / "derived.safetensors", work / "unrelated.safetensors"
    save_file({k: v.contiguous() for k, v in _derived(owner).state_dict().items()}, str(derived))
    save_file({k: v.contiguous() for k, v in _owner("not-registered", channels, filters).state_dict().items()}, str(unrelated))
    rows: list[dict[str, Any]] = []
    db = work / "registry.db"
    db.unlink(missing_ok=True)
    reg = KeyStore(db)
    have = 0
    t_build = 0.0
    for n in sizes:
        t0 = time.perf_counter()
        while have < n:
            k = _synthetic_key(have, filters, channels)
            reg.add_key(k, k.to_bytes(), f"reg-{have}", commit=False, secret=f"reg-{have}")
            have += 1
        reg.commit()
        t_build += time.perf_counter() - t0
        reg.close()
        t0 = time.perf_counter()
        reg = KeyStore(db, create=False)
        reg.groups()
        t_open = time.perf_counter() - t0
        res = reg.match(derived)
        none = reg.match(unrelated)
        t_derived = median_seconds(lambda: reg.match(derived), 3)
        t_unrelated = median_seconds(lambda: reg.match(unrelated), 3)
        rows.append(
            {
                "keys": n,
                "derived_s": t_derived,
                "unrelated_s": t_unrelated,
                "open_s": t_open,
                "found": [m.key for m in res.found],
                "derived_tested": res.tested,
                "unrelated_found": [m.key for m in none.found],
                "unrelated_tested": none.tested,
                "size_mb": db.stat().st_size / 2**20,
                "build_s": t_build,
            }
        )
        log(f"registry {rows[-1]}")
    reg.close()
    db.unlink()
    return {"rows": rows, "goal": "< 1 s per suspect at 10,000 keys", "key_shape": [filters, channels, 3, 3]}


def bench_poisoning(work: Path, victims: int = 20, log=print) -> dict[str, Any]:
    """Keys a forger builds from innocent uploads (:mod:`freqprint_bench.poison`): how many of the
    uploads they make a scan accuse, registered bare (every key accepted as it is: the registry
    before 0.14) and by the default rule (a secret checked against W₀, matches against W₀).
    Innocents: SmallCNNs fingerprinted by other owners and plain SmallCNNs, widths 8 and 16.
    Every key gets the full test (no screen), so nothing is hidden by the screen."""
    from freqprint.errors import FreqprintError
    from freqprint.models import create_model
    from freqprint.scan import KeyStore
    from freqprint_bench.corpus import owner_model
    from freqprint_bench.poison import forged_keys

    uploads: dict[str, dict[str, torch.Tensor]] = {}
    forged: dict[str, dict[str, Path]] = {}
    for i in range(victims):
        width = 8 if i % 2 == 0 else 16
        if i < victims // 2:
            name, model = f"fingerprinted-{i}", owner_model(f"victim-{i}", width, 32)
        else:
            torch.manual_seed(1000 + i)
            name, model = f"plain-{i}", create_model("smallcnn", num_classes=10, in_channels=1, width=width).eval()
        uploads[name] = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        forged[name] = forged_keys(model, f"forger-{i}", work / "forged" / name)
    rows: list[dict[str, Any]] = []
    for rule in ("bare (before 0.14)", "default: secret checked, matched against W0"):
        db = work / f"poison-{len(rows)}.db"
        refused: dict[str, int] = {}
        registered: dict[str, int] = {}
        with KeyStore(db) as reg:
            for name, keys in forged.items():
                for kind, path in keys.items():
                    try:
                        if rule.startswith("bare"):
                            reg.add(path, name=f"{name}/{kind}", allow_bare=True)
                        else:
                            reg.add(path, name=f"{name}/{kind}", secret=f"forger-{name.split('-')[-1]}")
                        registered[kind] = registered.get(kind, 0) + 1
                    except FreqprintError:
                        refused[kind] = refused.get(kind, 0) + 1
            accused = {name: [m.key for m in reg.match(sd, screen=False).found] for name, sd in uploads.items()}
        rows.append(
            {
                "rule": rule,
                "keys_offered": sum(len(k) for k in forged.values()),
                "registered": registered,
                "refused": refused,
                "uploads": len(uploads),
                "accused": sum(1 for v in accused.values() if v),
                "accusing_keys": sorted({k for v in accused.values() for k in v}),
            }
        )
        log(f"poisoning {rows[-1]}")
    return {"rows": rows, "goal": "0 innocent uploads matched by forged or chimera keys"}


def bench_scan(work: Path, log=print) -> dict[str, Any]:
    from freqprint.scan import KeyStore
    from freqprint.scan.bulk import scan
    from freqprint_bench.corpus import build_corpus

    keys, labels = build_corpus(work / "corpus")
    db = work / "corpus" / "reg.db"
    with KeyStore(db) as r:
        for k in keys:
            r.add(k, secret=f"secret-{Path(k).stem}")  # build_corpus's owners
    rows: list[dict[str, Any]] = []
    for executor, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
        out = work / f"scan-{executor}-{workers}.jsonl"
        try:
            s = scan([work / "corpus" / "checkpoints"], db, out, executor=executor, workers=workers, keep_records=True)
        except Exception as e:  # Ray missing: reported, not fatal
            rows.append({"executor": executor, "workers": workers, "error": str(e).splitlines()[0]})
            continue
        wrong = sum(
            1
            for r in s.records
            if (r["status"] == "error") != (labels[r["path"]] == "error")
            or (
                r["status"] != "error"
                and [m["key"] for m in r.get("matches", [])] != ([labels[r["path"]]] if labels[r["path"]] else [])
            )
        )
        rows.append(
            {
                "executor": executor,
                "workers": workers,
                "files": s.checkpoints,
                "seconds": s.seconds,
                "files_per_s": s.checkpoints / s.seconds,
                "matched": s.matched,
                "errors": s.errors,
                "wrong": wrong,
            }
        )
        log(f"scan {rows[-1]}")
    base = rows[0].get("files_per_s")
    for row in rows:
        if base and "files_per_s" in row:
            row["speedup"] = row["files_per_s"] / base
    return {"rows": rows, "checkpoints": len(labels)}


EMBED_RUNS: tuple[tuple[str, float | None, int, float], ...] = (  # (label, attack_fraction, attack_every, λ)
    ("plain", None, 1, 0.0),
    ("λ 5e-4, L_attack on the whole batch (the paper)", 1.0, 1, 5e-4),
    ("λ 5e-4, L_attack on 1/4 of the batch", 0.25, 1, 5e-4),
    ("λ 5e-4, L_attack on 1/4 of every 2nd batch", 0.25, 2, 5e-4),
    ("λ 5e-4, L_attack on 1/4 of every 4th batch", 0.25, 4, 5e-4),
    # at the paper's λ, L_attack teaches nothing measurable in 3 epochs; at λ = 1 it does, so
    # these two rows show whether the cheap schedule keeps what L_attack is for
    ("λ 1, L_attack on the whole batch", 1.0, 1, 1.0),
    ("λ 1, L_attack on 1/4 of every 2nd batch", 0.25, 2, 1.0),
    ("plain, again (drift check)", None, 1, 0.0),
)


def _overwritten(model, test_ds, n: int, seed: int = 0) -> tuple[float, float]:
    """With the module's W overwritten by W + ε (L_attack's own perturbation, a fixed draw): the
    share of test images the model sends to the pseudo class, and its accuracy on the n real
    classes.  This is what L_attack buys: a model whose fingerprint is overwritten stops working."""
    from freqprint.fingerprint import get_fingerprint_module
    from freqprint.fingerprint.loss import spectral_noise

    _, fp = get_fingerprint_module(model)
    eps = spectral_noise(fp.weight, fp.grid_size, 0.5, generator=torch.Generator().manual_seed(seed))
    model.eval()
    with torch.no_grad(), fp.perturbed(eps):
        pred = torch.cat([model(test_ds.images[i : i + 512]).argmax(1) for i in range(0, len(test_ds), 512)])
    return float((pred == n).float().mean()), float((pred == test_ds.labels).float().mean())


def bench_embedding(data_root: str | None, limit: int = 6000, epochs: int = 3, log=print) -> dict[str, Any]:
    from freqprint.data import load_dataset
    from freqprint.fingerprint import FingerprintConfig, attach
    from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class
    from freqprint.models import create_model
    from freqprint.training import TrainConfig, evaluate, train
    from freqprint.verification.key import extract
    from freqprint.verification.verifier import verify

    train_ds = load_dataset("fashion-mnist", "train", root=data_root, limit=limit)
    test_ds = load_dataset("fashion-mnist", "test", root=data_root)
    rows: list[dict[str, Any]] = []
    for label, fraction, every, lam in EMBED_RUNS:
        torch.manual_seed(0)
        model = create_model("smallcnn", num_classes=10, in_channels=1, width=32)
        crit = None
        if fraction is not None:
            add_pseudo_class(model)  # L_attack's n+1-th class, as embed does
            attach(model, FingerprintConfig(target="conv2", secret="embed-bench"), train_ds.images[:2])
            crit = FingerprintLoss(10, weight=lam, attack_fraction=fraction, attack_every=every)
        cfg = TrainConfig(epochs=epochs, lr=0.05, lr_drop_at=2 / 3)
        stamps = [time.perf_counter()]
        train(model, train_ds, cfg, criterion=crit, progress=False, checkpoint=lambda m, e: stamps.append(time.perf_counter()))
        sec = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))  # median epoch: robust to a stray slow one
        acc = evaluate(model, test_ds, num_classes=10)
        row = {
            "run": label,
            "attack_fraction": fraction,
            "attack_every": every,
            "weight": lam,
            "s_per_epoch": sec,
            "accuracy": acc,
        }
        if fraction is not None:
            rep = verify(extract(model, secret="embed-bench"), model)
            to_pseudo, acc_over = _overwritten(model, test_ds, 10)
            row.update(log10_p=rep.log10_p, tau_score=rep.score, overwritten_to_pseudo=to_pseudo, overwritten_accuracy=acc_over)
        rows.append(row)
        log(f"embedding {row}")
    plain = statistics.mean(r["s_per_epoch"] for r in rows if r["attack_fraction"] is None)  # first and last run
    for r in rows:
        r["overhead"] = r["s_per_epoch"] / plain - 1
    return {"rows": rows, "limit": limit, "epochs": epochs, "plain_s_per_epoch": plain, "goal": "<= 25 % overhead per epoch"}


def select_benches(which: str) -> tuple[str, ...]:
    """The benchmarks ``--which`` names: ``all`` (``cost`` holds ``cost-resnet18``; ``million``,
    which writes a 3 GB registry, and ``probe``, a sweep of some 1,400 screens, only by name), or
    a comma-separated list of :data:`BENCHES`."""
    from freqprint.errors import InvalidArgument

    if which == "all":
        return tuple(b for b in BENCHES if b not in ("cost-resnet18", "million", "probe"))
    names = tuple(w.strip() for w in which.split(","))
    bad = [w for w in names if w not in BENCHES]
    if bad:
        raise InvalidArgument(f"unknown benchmark(s) {', '.join(bad)}; choose from {', '.join(BENCHES)}")
    return names


def run_scale_bench(
    which: tuple[str, ...] = BENCHES,
    demo_dir: Path = Path("demo-output"),
    data_root: str | None = None,
    log=print,
    metav_claim: Path | None = Path("bench-results/metav/metav-classification.safetensors"),
) -> dict[str, Any]:
    res: dict[str, Any] = {"benchmark": "scale", "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in which:
            t0 = time.perf_counter()
            if name == "latency":
                res[name] = bench_latency(work, log=log)
                res["latency_as_trained"] = bench_latency(work, sizes_mb=(1, 1000), log=log, permuted=False)
            elif name == "cost":
                res[name] = bench_cost(demo_dir, log=log, metav_claim=metav_claim)
                res["cost_resnet18"] = bench_cost_resnet(work, data_root, log=log)
            elif name == "cost-resnet18":  # the full-width ResNet-18 rows alone (no demo models needed)
                res[name] = res["cost_resnet18"] = bench_cost_resnet(work, data_root, log=log)
            elif name == "registry":
                res[name] = bench_registry(work, log=log)
            elif name == "poisoning":
                res[name] = bench_poisoning(work, log=log)
            elif name == "scan":
                res[name] = bench_scan(work, log=log)
            elif name == "embedding":
                res[name] = bench_embedding(data_root, log=log)
            elif name == "million":
                from freqprint_bench.million import bench_million

                res[name] = bench_million(work, log=log)
            elif name == "probe":
                from freqprint_bench.probe import bench_probe

                res[name] = bench_probe(work, log=log)
            res[name]["seconds"] = time.perf_counter() - t0
    return res


def scale_markdown(r: dict[str, Any]) -> str:
    out = ["# bench scale", ""]
    for name in ("latency", "latency_as_trained"):
        if name in r:
            out += [
                f"## verify latency vs file size, suspect {r[name].get('suspect', 'permuted')} (goal: <= 2x the floor)",
                "",
                "| file MB | floor ms | verdict ms | ratio | stage | with description ms | found |",
                "|---|---|---|---|---|---|---|",
            ]
            out += [
                f"| {x['file_mb']} | {x['floor_s'] * 1e3:.2f} | {x['verify_s'] * 1e3:.2f} | {x['ratio']:.1f}x | {x.get('stage', '-')} | "
                f"{x.get('described_s', float('nan')) * 1e3:.1f} | {x['found']} |"
                for x in r[name]["rows"]
            ]
            out.append("")
    if "cost" in r:
        out += [
            "## cost per suspect (goal: ours >= 100x cheaper than CKA)",
            "",
            "| suspect | ours: verdict ms | stage | ours: with description ms | ours: exhaustive search ms | ours: registry ms | CKA ms | CKA / ours | MetaV ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {x['suspect']} | {x['ours_verify_s'] * 1e3:.2f} | {x.get('stage', '-')} | {x.get('ours_described_s', float('nan')) * 1e3:.1f} | "
            f"{x.get('ours_exhaustive_s', float('nan')) * 1e3:.1f} | "
            f"{x['ours_registry_s'] * 1e3:.1f} | {x['cka_s'] * 1e3:.1f} | "
            f"{x['cka_over_ours']:.2f}x | "
            + (f"{x['metav_s'] * 1e3:.1f} |" if x.get("metav_s") is not None else "no claim given |")
            for x in r["cost"]["rows"]
        ]
        out.append("")
    if "cost_resnet18" in r:
        c = r["cost_resnet18"]
        out += [
            f"## cost per suspect on a full-width ResNet-18 ({c['model']})",
            "",
            "| suspect | file MB | ours: verdict ms | stage | aligned / readings | found | ours: registry ms | registry, no probe ms "
            "| read floor ms | CKA ms | CKA / ours (verdict) | registry / CKA (goal ≤ 0.1) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {x['suspect']} | {x['file_mb']:.1f} | {x['ours_verify_s'] * 1e3:.2f} | {x['stage']} | {x['fitted']} / {x['layers_searched']} | "
            f"{x['found']} | {x['ours_registry_s'] * 1e3:.1f} | {x.get('ours_registry_whole_s', float('nan')) * 1e3:.1f} | "
            f"{x.get('read_floor_s', float('nan')) * 1e3:.1f} | {x['cka_s'] * 1e3:.1f} | {x['cka_over_ours']:.2f}x | "
            f"{x['ours_registry_s'] / x['cka_s']:.3f} |"
            for x in c["rows"]
        ]
        out.append("")
    if "registry" in r:
        out += [
            "## registry matching per suspect (goal: < 1 s at 10,000 keys)",
            "",
            "| keys | derived s | unrelated s | open s | found (derived) | full tests (derived / unrelated) | size MB |",
            "|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {x['keys']} | {x['derived_s']:.3f} | {x['unrelated_s']:.3f} | {x['open_s']:.2f} | {', '.join(x['found']) or '-'} | "
            f"{x['derived_tested']} / {x['unrelated_tested']} | {x['size_mb']:.1f} |"
            for x in r["registry"]["rows"]
        ]
        out.append("")
    if "million" in r:
        from freqprint_bench.million import million_markdown

        out += million_markdown(r["million"])
    if "probe" in r:
        from freqprint_bench.probe import probe_markdown

        out += probe_markdown(r["probe"])
    if "poisoning" in r:
        out += [
            f"## registry poisoning: forged keys of innocent uploads (goal: {r['poisoning']['goal']})",
            "",
            "| rule | keys offered | registered | refused | innocent uploads accused | accusing keys |",
            "|---|---|---|---|---|---|",
        ]
        out += [
            f"| {x['rule']} | {x['keys_offered']} | {', '.join(f'{k} {v}' for k, v in sorted(x['registered'].items())) or '0'} | "
            f"{', '.join(f'{k} {v}' for k, v in sorted(x['refused'].items())) or '0'} | {x['accused']} / {x['uploads']} | "
            f"{', '.join(x['accusing_keys']) or '-'} |"
            for x in r["poisoning"]["rows"]
        ]
        out.append("")
    if "scan" in r:
        out += [
            f"## scan throughput ({r['scan']['checkpoints']} checkpoints)",
            "",
            "| executor | workers | s | files/s | speed-up | wrong |",
            "|---|---|---|---|---|---|",
        ]
        for x in r["scan"]["rows"]:
            if "error" in x:
                out.append(f"| {x['executor']} | {x['workers']} | - | - | - | {x['error']} |")
            else:
                out.append(
                    f"| {x['executor']} | {x['workers']} | {x['seconds']:.1f} | {x['files_per_s']:.1f} | {x.get('speedup', 1):.2f}x | {x['wrong']} |"
                )
        out.append("")
    if "embedding" in r:
        e = r["embedding"]
        out += [
            f"## embedding overhead ({e['limit']} images, {e['epochs']} epochs; goal <= 25 %)",
            "",
            "| run | s / epoch | overhead | test accuracy | fingerprint p | τ-score | W overwritten: sent to the pseudo class | W overwritten: accuracy |",
            "|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {x['run']} | {x['s_per_epoch']:.1f} | {x['overhead'] * 100:+.0f} % | {x['accuracy']:.4f} | "
            + (
                f"1e{x['log10_p']:.1f} | {x['tau_score']:.3f} | {x['overwritten_to_pseudo']:.3f} | {x['overwritten_accuracy']:.4f}"
                if "log10_p" in x
                else "- | - | - | -"
            )
            + " |"
            for x in e["rows"]
        ]
        out.append("")
    return "\n".join(out)
