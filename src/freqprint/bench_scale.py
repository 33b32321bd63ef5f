"""``bench scale``: the five performance benchmarks of tracing at scale, each a ratio measured in
one run (BENCHMARKS §12).

* ``latency`` — verify latency per checkpoint against file size (1 MB … 1 GB: a derived module
  tensor among unrelated ones) vs the floor, the time to open the file and read just the tensor
  the verdict needs.  Goal ≤ 2× the floor.
* ``cost`` — cost per suspect of ours (verify from the file; through a one-key registry) vs CKA
  (REEF: load the model, forward the probes, score) on the demo's models.  Goal ≥ 100× cheaper
  than CKA.  MetaV's column (load the model, query the N fingerprint inputs, run V) is filled
  when a classification claim is given (``metav_claim``: ``freqprint metav bench`` writes one);
  its one-off cost, training the ensemble, is in BENCHMARKS §13.
* ``registry`` — matching one suspect against 1, 100 and 10,000 registered keys (screen + full
  tests on the candidates), the registry's size on disk.  Goal < 1 s at 10,000 on 2 cores.
* ``scan`` — files per second over the 200-checkpoint corpus: in-process, a local pool of 2, Ray
  with 1 and 2 workers (cluster start included).
* ``embedding`` — seconds per training epoch, plain vs fingerprinted (L_attack on the whole batch,
  and on a quarter of it: ``attack_fraction``), with test accuracy and the fingerprint's p-value.
  Goal ≤ 25 % overhead.

Timings are medians of repeats after a warm-up (the page cache is warm).  Keys for the registry
benchmark are real anchored keys of a 32-filter module on 16 channels (a SmallCNN of width 16),
built from secrets ``reg-0``, ``reg-1``, …
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import safe_open, save_file

__all__ = ["BENCHES", "run_scale_bench", "scale_markdown"]

BENCHES = ("latency", "cost", "registry", "scan", "embedding")


def _median_time(fn: Callable[[], Any], repeats: int = 5) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def _owner(secret: str, width: int, filters: int):
    from freqprint.registry.corpus import owner_model

    return owner_model(secret, width, filters)


def _derived(model, seed: int = 1):
    from freqprint.attacks import Compose, ModulePermutation
    from freqprint.attacks.equivariance import BlockPermutation

    return Compose([BlockPermutation(seed=seed), ModulePermutation(seed=seed)])(model)


def bench_latency(work: Path, sizes_mb: tuple[int, ...] = (1, 10, 100, 1000), log=print) -> dict[str, Any]:
    from freqprint.key import extract
    from freqprint.verify import verify

    owner = _owner("latency-owner", 32, 256)
    key = extract(owner, secret="latency-owner")
    sd = {k: v.contiguous() for k, v in _derived(owner).state_dict().items()}
    module = "conv2.fingerprint.weight"
    rows = []
    for mb in sizes_mb:
        path = work / f"latency-{mb}mb.safetensors"
        pad = max(0, mb * 2**20 - sum(v.numel() * v.element_size() for v in sd.values()))
        extra = {f"unrelated.{i}": torch.randn(1000, 1000 if i < pad // 4_000_000 else max(1, (pad % 4_000_000) // 4000))
                 for i in range(pad // 4_000_000 + (1 if pad % 4_000_000 >= 4000 else 0))}
        save_file({**sd, **extra}, str(path))
        del extra

        def floor() -> None:
            with safe_open(str(path), framework="pt") as f:
                f.get_tensor(module)

        t_floor = _median_time(floor)
        t_verify = _median_time(lambda: verify(key, path))
        rep = verify(key, path)
        rows.append({"file_mb": round(path.stat().st_size / 2**20, 1), "floor_s": t_floor, "verify_s": t_verify,
                     "ratio": t_verify / t_floor, "found": rep.found, "log10_p": rep.log10_p})
        log(f"latency {rows[-1]}")
        path.unlink()
    return {"rows": rows, "goal": "verify <= 2x floor"}


def bench_cost(demo_dir: Path, log=print, metav_claim: Path | None = None) -> dict[str, Any]:
    from freqprint.baselines.representation import CKAFingerprint
    from freqprint.checkpoint import load_model
    from freqprint.data import load_dataset
    from freqprint.method import MethodContext
    from freqprint.registry import Registry
    from freqprint.verify import verify

    key_path = demo_dir / "owner.key"
    owner, _ = load_model(demo_dir / "owner.safetensors")
    data = load_dataset("fashion-mnist", "test", limit=1000)
    cka = CKAFingerprint(layer="conv3")
    evidence = cka.extract(owner, MethodContext(secret="demo owner secret", num_classes=10, data=data))
    mv = None
    if metav_claim is not None and Path(metav_claim).is_file():
        from freqprint.metav import load_claim

        mv, _ = load_claim(metav_claim)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(Path(tmp) / "r.db")
        reg.add(key_path, name="owner")
        for name in ("finetuned", "independent"):
            path = demo_dir / f"{name}.safetensors"

            def ours() -> None:
                verify(key_path, path)

            def registry() -> None:
                reg.match(path)

            def cka_cost() -> None:
                m, _ = load_model(path)
                cka.score(evidence, m)

            def metav_cost() -> None:
                m, _ = load_model(path)
                mv.score(m)

            t = {"ours_verify_s": _median_time(ours), "ours_registry_s": _median_time(registry), "cka_s": _median_time(cka_cost)}
            t.update(suspect=name, cka_over_ours=t["cka_s"] / t["ours_verify_s"], metav_s=_median_time(metav_cost) if mv else None)
            rows.append(t)
            log(f"cost {t}")
        reg.close()
    return {"rows": rows, "goal": "ours >= 100x cheaper than CKA", "metav_claim": str(metav_claim) if mv else None}


def _synthetic_key(i: int, filters: int, channels: int):
    from freqprint.key import extract
    from freqprint.module import initial_weight

    secret = f"reg-{i}"
    sd = {"conv2.fingerprint.weight": initial_weight(secret, "conv2", filters, channels, 3),
          "conv2.fingerprint.grid": torch.tensor([28, 28, 3, 1, 1])}
    return extract(sd, secret=secret)


def bench_registry(work: Path, sizes: tuple[int, ...] = (1, 100, 10_000), filters: int = 32, channels: int = 16,
                   log=print) -> dict[str, Any]:
    from freqprint.registry import Registry

    owner = _owner("reg-0", channels, filters)
    derived, unrelated = work / "derived.safetensors", work / "unrelated.safetensors"
    save_file({k: v.contiguous() for k, v in _derived(owner).state_dict().items()}, str(derived))
    save_file({k: v.contiguous() for k, v in _owner("not-registered", channels, filters).state_dict().items()}, str(unrelated))
    rows = []
    db = work / "registry.db"
    db.unlink(missing_ok=True)
    reg = Registry(db)
    have = 0
    t_build = 0.0
    for n in sizes:
        t0 = time.perf_counter()
        while have < n:
            k = _synthetic_key(have, filters, channels)
            reg.add_key(k, k.to_bytes(), f"reg-{have}", commit=False)
            have += 1
        reg.commit()
        t_build += time.perf_counter() - t0
        reg.close()
        t0 = time.perf_counter()
        reg = Registry(db, create=False)
        reg.groups()
        t_open = time.perf_counter() - t0
        res = reg.match(derived)
        none = reg.match(unrelated)
        t_derived = _median_time(lambda: reg.match(derived), 3)
        t_unrelated = _median_time(lambda: reg.match(unrelated), 3)
        rows.append({"keys": n, "derived_s": t_derived, "unrelated_s": t_unrelated, "open_s": t_open,
                     "found": [m.key for m in res.found], "derived_tested": res.tested, "unrelated_found": [m.key for m in none.found],
                     "unrelated_tested": none.tested, "size_mb": db.stat().st_size / 2**20, "build_s": t_build})
        log(f"registry {rows[-1]}")
    reg.close()
    db.unlink()
    return {"rows": rows, "goal": "< 1 s per suspect at 10,000 keys", "key_shape": [filters, channels, 3, 3]}


def bench_scan(work: Path, log=print) -> dict[str, Any]:
    from freqprint.registry import Registry
    from freqprint.registry.corpus import build_corpus
    from freqprint.registry.scan import scan

    keys, labels = build_corpus(work / "corpus")
    db = work / "corpus" / "reg.db"
    with Registry(db) as r:
        for k in keys:
            r.add(k)
    rows = []
    for executor, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
        out = work / f"scan-{executor}-{workers}.jsonl"
        try:
            s = scan([work / "corpus" / "checkpoints"], db, out, executor=executor, workers=workers, keep_records=True)
        except Exception as e:  # Ray missing: reported, not fatal
            rows.append({"executor": executor, "workers": workers, "error": str(e).splitlines()[0]})
            continue
        wrong = sum(1 for r in s.records if (r["status"] == "error") != (labels[r["path"]] == "error")
                    or (r["status"] != "error" and [m["key"] for m in r.get("matches", [])] != ([labels[r["path"]]] if labels[r["path"]] else [])))
        rows.append({"executor": executor, "workers": workers, "files": s.checkpoints, "seconds": s.seconds,
                     "files_per_s": s.checkpoints / s.seconds, "matched": s.matched, "errors": s.errors, "wrong": wrong})
        log(f"scan {rows[-1]}")
    base = rows[0].get("files_per_s")
    for r in rows:
        if base and "files_per_s" in r:
            r["speedup"] = r["files_per_s"] / base
    return {"rows": rows, "checkpoints": len(labels)}


def bench_embedding(data_root: str | None, limit: int = 6000, epochs: int = 1, log=print) -> dict[str, Any]:
    from freqprint.data import load_dataset
    from freqprint.key import extract
    from freqprint.loss import FingerprintLoss, add_pseudo_class
    from freqprint.models import create_model
    from freqprint.module import FingerprintConfig, attach
    from freqprint.training import TrainConfig, evaluate, train
    from freqprint.verify import verify

    train_ds = load_dataset("fashion-mnist", "train", root=data_root, limit=limit)
    test_ds = load_dataset("fashion-mnist", "test", root=data_root)
    rows = []
    for label, fraction in (("plain", None), ("fingerprint, L_attack on the whole batch", 1.0), ("fingerprint, L_attack on 1/4 batch", 0.25)):
        torch.manual_seed(0)
        model = create_model("smallcnn", num_classes=10, in_channels=1, width=32)
        crit = None
        if fraction is not None:
            add_pseudo_class(model)  # L_attack's n+1-th class, as embed does
            attach(model, FingerprintConfig(target="conv2", secret="embed-bench"), train_ds.images[:2])
            crit = FingerprintLoss(10, attack_fraction=fraction)
        cfg = TrainConfig(epochs=epochs, lr=0.01, lr_drop_at=None)
        t0 = time.perf_counter()
        train(model, train_ds, cfg, criterion=crit, progress=False)
        sec = (time.perf_counter() - t0) / epochs
        acc = evaluate(model, test_ds, num_classes=10)
        row = {"run": label, "attack_fraction": fraction, "s_per_epoch": sec, "accuracy": acc}
        if fraction is not None:
            rep = verify(extract(model, secret="embed-bench"), model)
            row.update(log10_p=rep.log10_p, tau_score=rep.score)
        rows.append(row)
        log(f"embedding {row}")
    for r in rows:
        r["overhead"] = r["s_per_epoch"] / rows[0]["s_per_epoch"] - 1
    return {"rows": rows, "limit": limit, "epochs": epochs, "goal": "<= 25 % overhead per epoch"}


def run_scale_bench(which: tuple[str, ...] = BENCHES, demo_dir: Path = Path("demo-output"), data_root: str | None = None,
                    log=print, metav_claim: Path | None = Path("bench-results/metav/metav-classification.safetensors")) -> dict[str, Any]:
    res: dict[str, Any] = {"benchmark": "scale", "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in which:
            t0 = time.perf_counter()
            if name == "latency":
                res[name] = bench_latency(work, log=log)
            elif name == "cost":
                res[name] = bench_cost(demo_dir, log=log, metav_claim=metav_claim)
            elif name == "registry":
                res[name] = bench_registry(work, log=log)
            elif name == "scan":
                res[name] = bench_scan(work, log=log)
            elif name == "embedding":
                res[name] = bench_embedding(data_root, log=log)
            res[name]["seconds"] = time.perf_counter() - t0
    return res


def scale_markdown(r: dict[str, Any]) -> str:
    out = ["# bench scale", ""]
    if "latency" in r:
        out += ["## verify latency vs file size (goal: <= 2x the floor)", "", "| file MB | floor ms | verify ms | ratio | found |",
                "|---|---|---|---|---|"]
        out += [f"| {x['file_mb']} | {x['floor_s'] * 1e3:.2f} | {x['verify_s'] * 1e3:.1f} | {x['ratio']:.0f}x | {x['found']} |"
                for x in r["latency"]["rows"]]
        out.append("")
    if "cost" in r:
        out += ["## cost per suspect (goal: ours >= 100x cheaper than CKA)", "", "| suspect | ours: verify ms | ours: registry ms | CKA ms | CKA / ours | MetaV ms |",
                "|---|---|---|---|---|---|"]
        out += [f"| {x['suspect']} | {x['ours_verify_s'] * 1e3:.1f} | {x['ours_registry_s'] * 1e3:.1f} | {x['cka_s'] * 1e3:.1f} | "
                f"{x['cka_over_ours']:.2f}x | " + (f"{x['metav_s'] * 1e3:.1f} |" if x.get("metav_s") is not None else "no claim given |")
                for x in r["cost"]["rows"]]
        out.append("")
    if "registry" in r:
        out += ["## registry matching per suspect (goal: < 1 s at 10,000 keys)", "",
                "| keys | derived s | unrelated s | open s | found (derived) | full tests (derived / unrelated) | size MB |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {x['keys']} | {x['derived_s']:.3f} | {x['unrelated_s']:.3f} | {x['open_s']:.2f} | {', '.join(x['found']) or '-'} | "
                f"{x['derived_tested']} / {x['unrelated_tested']} | {x['size_mb']:.1f} |" for x in r["registry"]["rows"]]
        out.append("")
    if "scan" in r:
        out += [f"## scan throughput ({r['scan']['checkpoints']} checkpoints)", "", "| executor | workers | s | files/s | speed-up | wrong |",
                "|---|---|---|---|---|---|"]
        for x in r["scan"]["rows"]:
            if "error" in x:
                out.append(f"| {x['executor']} | {x['workers']} | - | - | - | {x['error']} |")
            else:
                out.append(f"| {x['executor']} | {x['workers']} | {x['seconds']:.1f} | {x['files_per_s']:.1f} | {x.get('speedup', 1):.2f}x | {x['wrong']} |")
        out.append("")
    if "embedding" in r:
        e = r["embedding"]
        out += [f"## embedding overhead ({e['limit']} images, {e['epochs']} epoch; goal <= 25 %)", "",
                "| run | s / epoch | overhead | test accuracy | fingerprint p |", "|---|---|---|---|---|"]
        out += [f"| {x['run']} | {x['s_per_epoch']:.1f} | {x['overhead'] * 100:+.0f} % | {x['accuracy']:.4f} | "
                + (f"1e{x['log10_p']:.1f}" if "log10_p" in x else "-") + " |" for x in e["rows"]]
        out.append("")
    return "\n".join(out)
