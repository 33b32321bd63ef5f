"""Suspect ensembles from a manifest: a small declarative JSON file, one entry per model.

An entry says how a model is made, from scratch or from a parent::

    {"name": "ftal-0", "role": "positive", "family": "ftal", "split": "train",
     "op": "finetune", "parent": "source", "seed": 3, "params": {"lr": 0.01, "epochs": 1}}

``op`` is one of

* ``train`` — from scratch: ``arch`` (a family of the task), ``seed``; params ``data``
  (``owner``, ``thief``, or ``other:NAME``: another task's data of the same shapes,
  :attr:`~freqprint.metav.tasks.Task.other_datasets`), ``epochs`` (0: an untrained network),
  ``lr``, and for a classifier ``fingerprint: true`` (the frequency fingerprint module is
  attached, so the white-box baseline has something to find);
* ``null`` — no model: an API whose answers ignore the question (params ``mode``: ``constant``,
  ``uniform``, ``random``; :class:`~freqprint.metav.tasks.NullAnswers`);
* ``finetune`` — continue training the parent on the thief's data: ``lr``, ``epochs``,
  ``layers`` (``all`` / ``last``), ``head`` (``keep`` / ``reinit``: FTLL, FTAL, RTLL, RTAL);
* ``prune`` (``rate``), ``noise`` (``scale``: Gaussian noise of that share of each weight's
  norm), ``quantize`` (``bits``) — from the attack library;
* ``distill`` — a fresh ``arch`` (same or another family) trained on the parent's outputs for the
  thief's inputs: ``epochs``, ``lr``, ``queries`` (how many of the thief's inputs; 0: all), and
  the task's recipe options (:attr:`~freqprint.metav.tasks.Task.distill_options`: for a
  classifier ``temperature``, ``hard``, ``optimizer``);
* ``compose`` — ``steps``: a list of ``{"op": ..., "params": ...}`` applied in order;
* ``output`` — no new weights: the parent served through an API that hides or reshapes part of
  its outputs (``mode``: ``label``, ``topk``, ``round``, and for a classifier ``temperature``).

``role`` is ``source`` (exactly one), ``positive`` (must descend from the source), ``negative``
(must not), ``reference`` (independent models kept out of training, validation and test, whose
scores give a claim's conformal p-value: :mod:`freqprint.stats.floor`), ``panel``
(independent models kept out of everything: the fresh panel a claim is re-checked on) or
``replicate`` (the source's own ``train`` recipe — arch and params — with another seed: the
draws of that recipe a claim's replicate route compares a suspect against,
:func:`freqprint.stats.floor.replicate_rank`; for a generator the first is the anchor whose
latent frame every candidate is read in).  ``split`` is ``train`` / ``val`` / ``test`` /
``reference`` / ``panel`` / ``replicate``.  The source is trained on and counted as a positive.

Models are cached by the SHA-256 of their full recipe (the task's data settings, the entry
without its name, role, family and split, and the parent's hash), so renaming or moving an entry
between splits never retrains it, and a rerun only trains what changed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.io.cache import recipe_hash  # the tracing pool's recipe hash: one cache format
from freqprint.metav.tasks import Task, create_task

__all__ = ["Ensemble", "Entry", "Manifest", "Member", "build_ensemble", "default_manifest", "PROFILES"]

FORMAT = "freqprint-metav-manifest/1"
OPS = ("train", "null", "finetune", "prune", "noise", "quantize", "distill", "compose", "output")
ROLES = ("source", "positive", "negative", "reference", "panel", "replicate")
SPLITS = ("train", "val", "test", "reference", "panel", "replicate")
HELD_APART = ("reference", "panel", "replicate")  # roles (and splits of the same name) no model of another split may descend from
MAX_ENTRIES = 5000
REPLICATE_SEED = 2_000_000  # the default manifest's replicates: seeds REPLICATE_SEED, REPLICATE_SEED + 1, ...


@dataclass
class Entry:
    name: str
    role: str
    family: str
    split: str
    op: str
    parent: str | None = None
    arch: str | None = None
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def recipe(self) -> dict[str, Any]:
        """What determines the model (hashed for the cache)."""
        return {"op": self.op, "arch": self.arch, "seed": self.seed, "params": self.params}


@dataclass
class Manifest:
    """A task (kind and data sizes) plus entries; :meth:`load` checks every field."""

    task: dict[str, Any]
    entries: list[Entry]
    profile: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "profile": self.profile, "task": self.task, "entries": [asdict(e) for e in self.entries]}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        from freqprint.io.files import read_small_text

        path = Path(path)
        text = read_small_text(path, 10_000_000, "manifest")  # a regular file of at most 10 MB
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise FreqprintError(f"{path} is not a JSON manifest ({str(e).splitlines()[0][:100]})") from None
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "manifest") -> Manifest:
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise FreqprintError(f"{source}: not a {FORMAT} manifest")
        task, entries = raw.get("task"), raw.get("entries")
        if not isinstance(task, dict) or not isinstance(task.get("kind"), str):
            raise FreqprintError(f"{source}: 'task' must be an object with a 'kind'")
        if not isinstance(entries, list) or not 0 < len(entries) <= MAX_ENTRIES:
            raise FreqprintError(f"{source}: 'entries' must be a list of 1..{MAX_ENTRIES} entries")
        out = []
        for i, e in enumerate(entries):
            if not isinstance(e, dict):
                raise FreqprintError(f"{source}: entry {i} is not an object")
            try:
                entry = Entry(**e)
            except TypeError as err:
                raise FreqprintError(f"{source}: entry {i}: {err}") from None
            out.append(entry)
        m = cls(task, out, str(raw.get("profile", "custom")))
        m.validate(source)
        return m

    def validate(self, source: str = "manifest") -> None:
        """Names unique, parents defined earlier, fields in range, roles consistent with ancestry."""
        seen: dict[str, Entry] = {}
        for e in self.entries:
            where = f"{source}: entry {e.name!r}"
            if not isinstance(e.name, str) or not e.name or e.name in seen:
                raise FreqprintError(f"{where}: names must be non-empty and unique")
            if e.op not in OPS or e.role not in ROLES or e.split not in SPLITS:
                raise FreqprintError(f"{where}: op must be one of {OPS}, role one of {ROLES}, split one of {SPLITS}")
            if not isinstance(e.params, dict) or type(e.seed) is not int:
                raise FreqprintError(f"{where}: 'params' must be an object and 'seed' an integer")
            if e.op == "train":
                if e.parent is not None or not isinstance(e.arch, str):
                    raise FreqprintError(f"{where}: a 'train' entry has an 'arch' and no parent")
            elif e.op == "null":
                if e.parent is not None:
                    raise FreqprintError(f"{where}: a 'null' entry has no parent")
            elif e.parent not in seen:
                raise FreqprintError(f"{where}: parent {e.parent!r} is not an earlier entry")
            if e.op == "distill" and not isinstance(e.arch, str):
                raise FreqprintError(f"{where}: a 'distill' entry names the student's 'arch'")
            derived = e.role == "source" or (e.parent is not None and self.descends_from_source(seen[e.parent], seen))
            if e.role == "positive" and not derived:
                raise FreqprintError(f"{where}: a positive must descend from the source")
            if e.role in ("negative", *HELD_APART) and derived:
                raise FreqprintError(f"{where}: a {e.role} model must not descend from the source")
            for held in HELD_APART:
                if (e.role == held) != (e.split == held):
                    raise FreqprintError(f"{where}: {held} models, and only they, go to the '{held}' split")
            if e.parent is not None and seen[e.parent].split in HELD_APART and seen[e.parent].split != e.split:
                raise FreqprintError(f"{where}: a {seen[e.parent].split} model's variants stay in its split")
            seen[e.name] = e
        if sum(e.role == "source" for e in self.entries) != 1:
            raise FreqprintError(f"{source}: exactly one entry must have role 'source'")
        src = next(e for e in self.entries if e.role == "source")
        for e in self.entries:
            if e.role == "replicate" and (
                src.op != "train" or (e.op, e.arch, e.params) != (src.op, src.arch, src.params) or e.seed == src.seed
            ):
                raise FreqprintError(
                    f"{source}: entry {e.name!r}: a replicate is the source's 'train' recipe (arch and params) with another seed"
                )

    @staticmethod
    def descends_from_source(e: Entry, seen: dict[str, Entry]) -> bool:
        while True:
            if e.role == "source":
                return True
            if e.parent is None:
                return False
            e = seen[e.parent]


@dataclass
class Member:
    """One model of the ensemble, as the verifier queries it."""

    entry: Entry
    model: nn.Module
    label: int
    query: Callable[[torch.Tensor], torch.Tensor]
    quality: float | None = None

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass
class Ensemble:
    task: Task
    members: list[Member]
    manifest: Manifest
    seconds: float = 0.0
    trained: int = 0
    cached: int = 0
    hashes: dict[str, str] = field(default_factory=dict)
    data: Any = None  # the task's TaskData

    def split(self, name: str) -> list[Member]:
        return [m for m in self.members if m.entry.split == name]

    @property
    def source(self) -> Member:
        return next(m for m in self.members if m.entry.role == "source")

    def counts(self) -> dict[str, dict[str, int]]:
        """split → family → number of models."""
        out: dict[str, dict[str, int]] = {}
        for m in self.members:
            fam = f"{'+' if m.label else '-'} {m.entry.family}"
            out.setdefault(m.entry.split, {}).setdefault(fam, 0)
            out[m.entry.split][fam] += 1
        return out


def _obfuscated(task: Task, model: nn.Module, mode: str, params: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
    """An API's answer: the model's outputs through the entry's obfuscation."""
    return task.obfuscate(task.outputs(model, x), mode, **params)


def quality(task: Task, model: nn.Module, data) -> float | None:
    """Accuracy (classification) or R² (regression) on the test set; None for generators."""
    with torch.no_grad():
        out = task.outputs(model, data.images)
    if task.kind == "classification":
        return float((out.argmax(1) == data.labels).float().mean())
    if task.kind == "regression":
        y = data.labels
        return float(1 - ((out[:, 0] - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    return None


class _Builder:
    def __init__(self, task: Task, data, cache_dir: Path | None, log: Callable[[str], None]) -> None:
        from freqprint.io.cache import ModelCache

        self.task, self.data, self.log = task, data, log
        self.cache = ModelCache(cache_dir) if cache_dir is not None else None
        self._uncached = 0

    @property
    def trained(self) -> int:
        return (self.cache.misses + self.cache.prefilled if self.cache else 0) + self._uncached

    @property
    def cached(self) -> int:
        return self.cache.hits - self.cache.prefilled if self.cache else 0  # a prefilled model is loaded once, as a hit

    def _apply(
        self, op: str, params: dict[str, Any], parent: nn.Module, seed: int, arch: str | None
    ) -> tuple[nn.Module, dict | None]:
        """(model, new recipe or None = the parent's) for one derivation step."""
        import copy

        from freqprint.attacks import BackboneNoise, Prune, Quantize

        t, p = self.task, params
        if op == "finetune":
            m = copy.deepcopy(parent)
            if p.get("head", "keep") == "reinit":
                torch.manual_seed(seed)
                head = t.head(m)
                assert isinstance(head, (nn.Linear, nn.ConvTranspose2d))  # what Task.head returns
                head.reset_parameters()
            data = self.data.thief if p.get("data", "thief") == "thief" else self.data.owner
            return t.fit(m, data, int(p.get("epochs", 1)), float(p.get("lr", 0.01)), seed, p.get("layers", "all")), None
        if op == "prune":
            return Prune(rate=float(p.get("rate", 0.5)), kind=str(p.get("kind", "unstructured")))(parent), None
        if op == "noise":
            return BackboneNoise(scale=float(p.get("scale", 0.05)), seed=seed)(parent), None
        if op == "quantize":
            return Quantize(bits=int(p.get("bits", 8)))(parent), None
        if op == "distill":
            student, recipe = t.build(str(arch), seed)
            teacher = parent.eval()
            options = {k: v for k, v in p.items() if k not in ("epochs", "lr", "queries")}
            unknown = sorted(set(options) - set(t.distill_options))
            if unknown:
                raise FreqprintError(
                    f"distill: unknown option(s) {', '.join(unknown)} for a {t.kind} task; known: epochs, lr, queries, "
                    + ", ".join(t.distill_options)
                )
            queries = int(p.get("queries", 0))
            data = self.data.thief.subset(queries, seed=seed) if 0 < queries < len(self.data.thief) else self.data.thief
            return t.distill(
                lambda x: t.outputs(teacher, x), student, data, int(p.get("epochs", 2)), float(p.get("lr", 0.05)), seed, **options
            ), recipe
        raise FreqprintError(f"unknown op {op!r}")

    def spec(self, e: Entry, parent: tuple[nn.Module, Mapping, str] | None) -> dict[str, Any]:
        """What an entry's model is a function of (its cache key): the task, the entry, the parent's hash."""
        return {"task": self.task.spec(), "entry": e.recipe(), "parent": parent[2] if parent else None}

    def kind(self, e: Entry) -> str:
        """The cache's file-name prefix for an entry's model."""
        return f"{self.task.kind}-{e.op}"

    def make(self, e: Entry, parent: tuple[nn.Module, Mapping, str] | None) -> tuple[nn.Module, Mapping, str]:
        """(model, recipe, hash) of an entry (parent's triple given), trained or from the cache."""
        spec = self.spec(e, parent)
        if e.op == "output":
            return parent[0], parent[1], recipe_hash(spec)  # type: ignore[index]
        if e.op == "null":  # nothing to train or cache
            model = self.task.null_model(str(e.params.get("mode", "constant")), e.seed)
            return model.eval(), {"model": "null", "mode": model.mode, "seed": e.seed}, recipe_hash(spec)

        def build() -> tuple[nn.Module, dict]:
            t0 = time.time()
            model, recipe = self._build(e, parent)
            self.log(f"  {e.name}: {e.op} ({time.time() - t0:.1f} s)")
            return model.eval(), recipe

        if self.cache is None:
            self._uncached += 1
            model, recipe = build()
            return model, recipe, recipe_hash(spec)
        model, stored, h = self.cache.get_with_recipe(spec, build, kind=self.kind(e))
        return model.eval(), stored, h

    def _build(self, e: Entry, parent: tuple[nn.Module, Mapping, str] | None) -> tuple[nn.Module, dict]:
        if e.op == "train":
            model, recipe = self.task.build(str(e.arch), e.seed)
            criterion = None
            if e.params.get("fingerprint"):
                model, recipe, criterion = self._fingerprinted(model, recipe, e.seed)
            source = str(e.params.get("data", "owner"))
            if source.startswith("other:"):
                data = self.task.other_data(source[len("other:") :], len(self.data.owner), seed=e.seed)
            elif source in ("owner", "thief"):
                data = self.data.thief if source == "thief" else self.data.owner
            else:
                raise FreqprintError(f"entry {e.name!r}: data must be 'owner', 'thief' or 'other:NAME', got {source!r}")
            epochs = int(e.params.get("epochs", 3))
            if epochs > 0:  # 0: an untrained network, as initialised
                model = self.task.fit(model, data, epochs, float(e.params.get("lr", 0.05)), e.seed, criterion=criterion, drop=0.5)
            return model.cpu().eval(), recipe
        assert parent is not None
        model, recipe = parent[0], dict(parent[1])
        steps = e.params.get("steps") if e.op == "compose" else [{"op": e.op, "params": e.params}]
        if not isinstance(steps, list) or not steps:
            raise FreqprintError(f"entry {e.name!r}: 'compose' needs a non-empty list of steps")
        for i, st in enumerate(steps):
            model, new = self._apply(str(st.get("op")), dict(st.get("params", {})), model, e.seed + i, e.arch)
            recipe = new or recipe
        return model, recipe

    def _fingerprinted(self, model: nn.Module, recipe: dict, seed: int) -> tuple[nn.Module, dict, Any]:
        if self.task.kind != "classification":
            raise FreqprintError("the frequency fingerprint module applies to classifiers (conv hosts) only")
        from freqprint.methods.base import MethodContext

        method = self.fingerprint_method()
        ctx = MethodContext(secret=fingerprint_secret(seed), num_classes=self.task.output_dim, data=self.data.owner)
        model = method.prepare(model, ctx)
        return model, {**recipe, **method.recipe_patch()}, method.criterion(ctx)

    @staticmethod
    def fingerprint_method():
        from freqprint.methods.ours import FrequencyFingerprint

        return FrequencyFingerprint(target="conv2", filters=64)


def fingerprint_secret(seed: int) -> str:
    """The secret a fingerprinted source of the ensemble is trained with (the benchmark's key)."""
    return f"metav-source-{seed}"


def _train_entry(shared: tuple[Task, Any], entry: Entry, parent: tuple[nn.Module, Mapping, str] | None) -> tuple[nn.Module, dict]:
    """One manifest entry trained from its parent's (model, recipe, hash): an executor job."""
    task, data = shared
    model, recipe = _Builder(task, data, None, lambda s: None)._build(entry, parent)
    return model.eval(), recipe


def _depths(entries: list[Entry]) -> dict[str, int]:
    """Training generation of each entry: 0 without a parent, else the parent's + 1 (an ``output``
    entry trains nothing and shares its parent's)."""
    by_name = {e.name: e for e in entries}
    depth: dict[str, int] = {}

    def of(name: str) -> int:
        if name not in depth:
            e = by_name[name]
            depth[name] = 0 if e.parent is None else of(e.parent) + (0 if e.op == "output" else 1)
        return depth[name]

    for e in entries:
        of(e.name)
    return depth


def build_ensemble(
    manifest: Manifest,
    cache_dir: str | Path | None = ".cache/freqprint/metav",
    root: str | None = None,
    log: Callable[[str], None] = lambda s: None,
    splits: tuple[str, ...] = SPLITS,
    device: str = "cpu",
    executor: Any = None,
) -> Ensemble:
    """Train (or load from the cache) every model of the manifest whose split is in ``splits``
    (and their ancestors); ``device`` is where they train (they are queried on the CPU).

    With an ``executor`` (:func:`freqprint.executor.create_executor`: Ray, a GPU per job) the
    missing models train as parallel jobs first, one generation at a time (a model's parent is in
    the cache before it is needed), and the pass below loads them; it needs a cache."""
    from freqprint.training import resolve_device

    resolve_device(device)  # one error line when CUDA is asked for and absent
    t0 = time.time()
    task = create_task(
        manifest.task["kind"],
        **{k: v for k, v in manifest.task.items() if k not in ("kind", "root", "device")},
        root=root,
        device=device,
    )
    data = task.load()
    builder = _Builder(task, data, Path(cache_dir) if cache_dir else None, log)
    by_name = {e.name: e for e in manifest.entries}
    need: set[str] = set()
    for e in manifest.entries:
        if e.split in splits or e.role == "source":
            n: str | None = e.name
            while n is not None and n not in need:
                need.add(n)
                n = by_name[n].parent
    made: dict[str, tuple[nn.Module, Mapping, str]] = {}

    def ensure(name: str) -> tuple[nn.Module, Mapping, str]:
        """An entry's (model, recipe, hash), its ancestors first: trained here or loaded from the cache."""
        if name not in made:
            e = by_name[name]
            made[name] = builder.make(e, ensure(e.parent) if e.parent else None)
        return made[name]

    if executor is not None:
        if builder.cache is None:
            raise FreqprintError("training on an executor needs a model cache (cache_dir)")
        wanted = [e for e in manifest.entries if e.name in need]
        depth = _depths(wanted)
        for gen in sorted(set(depth.values())):
            jobs = []
            for e in wanted:
                if depth[e.name] != gen or e.op in ("output", "null"):
                    continue
                parent = ensure(e.parent) if e.parent else None  # an earlier generation: in the cache by now
                jobs.append((builder.spec(e, parent), builder.kind(e), (e, parent)))
            trained = builder.cache.prefill(jobs, _train_entry, executor, (task, data), log)
            log(f"  generation {gen}: {trained} of {len(jobs)} models trained on the executor")
    members: list[Member] = []
    for e in manifest.entries:
        if e.name not in need:
            continue
        model = ensure(e.name)[0]
        if e.role == "source":
            task.fit_stats(partial(task.outputs, model), data.owner)
        q = quality(task, model, data.test)
        query: Callable[[torch.Tensor], torch.Tensor]
        if e.op == "output":
            mode = str(e.params.get("mode", "round"))
            extra = {k: v for k, v in e.params.items() if k != "mode"}
            query = partial(_obfuscated, task, model, mode, extra)
        else:
            query = partial(task.outputs, model)
        members.append(Member(e, model, int(e.role in ("source", "positive")), query, q))
    return Ensemble(
        task, members, manifest, time.time() - t0, builder.trained, builder.cached, {n: v[2] for n, v in made.items()}, data
    )


# ---------------------------------------------------------------------------------------------
# default manifests

_PATTERN = ("train", "test", "val", "train", "test", "train", "val", "test")


def _assign(n: int, held_out: bool) -> list[str]:
    return ["test"] * n if held_out else [_PATTERN[i % len(_PATTERN)] for i in range(n)]


@dataclass
class Profile:
    """Sizes of a default ensemble: ``scale[kind]`` multiplies the number of models per family
    (and the panel's size)."""

    name: str
    scale: dict[str, int] = field(default_factory=lambda: {"classification": 1, "regression": 1, "generation": 1})
    epochs: dict[str, int] = field(default_factory=lambda: {"classification": 4, "regression": 30, "generation": 5})
    task_sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    # draws of the source's recipe a claim compares suspects against (the replicate route: the
    # source's exact rank at α/2 = 0.005 needs 199 of them, and a generator one more, whose frame
    # every candidate is read in): generation only by default, where they cost about 4 min on 2
    # cores and catch what V misses (docs/benchmarks.md §13); a classifier's cost 15 s each
    replicates: dict[str, int] = field(default_factory=lambda: {"classification": 0, "regression": 0, "generation": 200})


PROFILES = {
    "tiny": Profile(
        "tiny",
        {"classification": 1, "regression": 1, "generation": 1},
        {"classification": 1, "regression": 20, "generation": 2},
        {
            "classification": {"owner_size": 1500, "thief_size": 800, "test_size": 500},
            "generation": {"owner_size": 1500, "thief_size": 800, "test_size": 128},
        },
    ),
    # 2 CPU cores, < 45 min for the three kinds (regression and generation models are cheap)
    "quick": Profile("quick", {"classification": 2, "regression": 6, "generation": 4}),
    "large": Profile(
        "large",
        {"classification": 4, "regression": 10, "generation": 8},
        {"classification": 10, "regression": 30, "generation": 15},
        {
            "classification": {"owner_size": 30000, "thief_size": 20000, "test_size": 5000},
            "generation": {"owner_size": 30000, "thief_size": 20000, "test_size": 512},
        },
    ),
}


# what the coverage entries of each kind use: cheap architecture families for far negatives, the
# APIs a reference model is also served through, and distillation recipes (name, options, lr)
_FAR_ARCHS = {
    "classification": ["mlp", "lenet"],
    "regression": ["mlp", "mlp-tanh", "mlp-deep"],
    "generation": ["vae-small", "vae"],
}
_SERVED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "classification": [
        ("t2", {"mode": "temperature", "t": 2.0}),
        ("t4", {"mode": "temperature", "t": 4.0}),
        ("label", {"mode": "label"}),
    ],
    "regression": [("round0.25", {"mode": "round", "step": 0.25}), ("round0.5", {"mode": "round", "step": 0.5})],
    "generation": [("4bit", {"mode": "round", "bits": 4}), ("2bit", {"mode": "round", "bits": 2})],
}
_RECIPES: dict[str, dict[str, tuple[dict[str, Any], float]]] = {
    "classification": {
        "t1-adam": ({"temperature": 1.0, "optimizer": "adam"}, 1e-3),
        "hard-sgd": ({"hard": True}, 0.05),
        "t2-sgd-1k": ({"temperature": 2.0, "queries": 1000}, 0.05),
    },
    "regression": {"r3": ({"repeats": 3}, 3e-3), "r1": ({"repeats": 1}, 3e-3), "q60": ({"queries": 60}, 3e-3)},
    "generation": {"q2k": ({"queries": 2000}, 1e-3), "q500": ({"queries": 500}, 1e-3), "lr3e-3": ({"queries": 0}, 3e-3)},
}


# recipes held out of training (test only), and the reference panel's least size: at n = 249 the
# smallest p₂ is 1/(n + 1) = 0.004, and one reference answer above a suspect still gives 0.008 ≤ α = 0.01
_HELD_RECIPES: dict[str, dict[str, tuple[dict[str, Any], float]]] = {
    "classification": {"t4-adam": ({"temperature": 4.0, "optimizer": "adam"}, 1e-3)},
}
REFERENCE_MIN = 249


def _coverage(kind: str, prof: Profile, src_arch: str, other: list[str], held_arch: str, base_lr: float, ep: int) -> list[Entry]:
    """What the first audits showed the ensemble was missing (issue 24), appended after the
    original entries with seeds of their own (the original models stay cached):

    * far negatives — models trained on another task's data of the same shapes, untrained networks,
      APIs whose answers ignore the question (constant, uniform, random), in train, val and test,
      with datasets and modes held out of training; negatives served at other temperatures;
    * positives distilled with several recipes (soft labels at T = 1 with Adam, hard labels, a
      small query budget) into several student families, with a recipe and a family that appear
      only in test;
    * the **reference** split: independent models of every kind (owner's data, thief's data,
      other data, untrained, null), each also served through the task's APIs, for the claim's
      conformal p-value; never trained on, validated on or tested;
    * far models in the judge's panel too.

    The profile sets the sizes (×1 tiny, ×2 quick, ×4 large): the ``quick`` profile tests 30 or
    more suspects per far family and per held-out student family, and its reference split holds
    at least REFERENCE_MIN = 249 answers (α = 0.01 needs 99)."""
    seed = iter(range(500_000, 600_000))
    t = {"tiny": 1, "quick": 2}.get(prof.name, 4)
    far = _FAR_ARCHS[kind]
    datasets = list(create_task(kind).other_datasets)
    seen_data = datasets[:-1]  # the last dataset appears only in test
    out: list[Entry] = []

    def add(name: str, role: str, fam: str, split: str, **item: Any) -> Entry:
        e = Entry(name, role, fam, split, seed=next(seed), **item)
        out.append(e)
        return e

    def trained(arch: str, data: str, epochs: int | None = None) -> dict[str, Any]:
        return dict(op="train", arch=arch, params={"data": data, "epochs": ep if epochs is None else epochs, "lr": base_lr})

    # far negatives: other data, untrained, null answers
    for split, n_other, n_null in (("train", 2, 2), ("val", 1, 1), ("test", 16 * t, 15 * t)):
        pool = datasets if split == "test" else seen_data
        for i in range(n_other):
            d, arch = pool[i % len(pool)], far[(i // len(pool)) % len(far)]
            add(f"far:{split}:other-{i}", "negative", f"other-data {d}", split, **trained(arch, f"other:{d}"))
        archs = [src_arch, *far, held_arch] if split == "test" else [src_arch, *far]
        for i in range(n_other):
            add(f"far:{split}:untrained-{i}", "negative", "untrained", split, **trained(archs[i % len(archs)], "owner", 0))
        modes = ("constant", "random") if split != "val" else ("constant",)
        for i in range(n_null):
            for mode in modes:
                add(f"far:{split}:null-{mode}-{i}", "negative", f"null {mode}", split, op="null", params={"mode": mode})
    add("far:test:null-uniform", "negative", "null uniform", "test", op="null", params={"mode": "uniform"})
    # independents and far negatives served through the APIs (temperatures for a classifier)
    indep = [e for e in out if e.op == "train" and e.params["epochs"] > 0]
    for split in ("train", "val", "test"):
        for j, (api, params) in enumerate(_SERVED[kind]):
            parents = [e for e in indep if e.split == split]
            for i, par in enumerate(parents[j::2] if split != "test" else parents):
                add(
                    f"far:{split}:{api}-{i}", "negative", f"neg api-{api} far", split, op="output", parent=par.name, params=params
                )
    # students: several recipes into several families; one recipe and one family only in test
    recipes = list(_RECIPES[kind].items())
    students = [a for a in dict.fromkeys([*other, src_arch, *far]) if a != held_arch]
    kd_epochs = max(2, ep)

    def student(name: str, rname: str, opts: dict[str, Any], lr: float, arch: str, split: str) -> None:
        add(
            name,
            "positive",
            f"kd {rname} → {arch}",
            split,
            op="distill",
            parent="source",
            arch=arch,
            params={"epochs": kd_epochs, "lr": lr, **opts},
        )

    for split, plan in (
        ("train", [(recipes[0], students[0]), (recipes[1], students[1 % len(students)]), (recipes[0], src_arch)]),
        ("val", [(recipes[0], students[-1]), (recipes[1], students[0])]),
        ("test", [(recipes[0], held_arch), (recipes[1], held_arch), (recipes[2], held_arch), (recipes[2], students[0])]),
    ):
        for k, ((rname, (opts, lr)), arch) in enumerate(plan):
            for i in range(5 * t if split == "test" else 1):
                student(f"kd:{split}:{k}:{rname}:{arch}-{i}", rname, opts, lr, arch, split)
    # positives served at the APIs the reference panel is served at (so an API is not a cue)
    for api, params in _SERVED[kind]:
        add(f"pos:train:{api}", "positive", f"api-{api}", "train", op="output", parent="source", params=params)
    # the reference split: every kind of independent model, raw and served
    ref: list[Entry] = []
    plan_ref = [(a, "owner") for a in [src_arch, *other, *far] for _ in range(2)] + [(a, "thief") for a in far]
    plan_ref += [(far[i % len(far)], f"other:{d}") for i, d in enumerate(seen_data * 2)]

    def ref_family(arch: str, data: str) -> str:
        return f"ref {'other-data' if data.startswith('other:') else arch + ' ' + data}"

    for i, (arch, data) in enumerate(plan_ref * t):
        ref.append(add(f"ref:{i}", "reference", ref_family(arch, data), "reference", **trained(arch, data)))
    for i, arch in enumerate(list(dict.fromkeys([src_arch, *other, *far, held_arch])) * (7 if t == 1 else t)):
        ref.append(add(f"ref:untrained-{i}", "reference", "ref untrained", "reference", **trained(arch, "owner", 0)))

    def served(par: Entry, api: str, params: dict[str, Any]) -> None:
        add(f"{par.name}:{api}", "reference", f"{par.family} api-{api}", "reference", op="output", parent=par.name, params=params)

    for api, params in _SERVED[kind]:
        for par in list(ref):
            served(par, api, params)
    for i in range(3 * t):
        for mode in ("constant", "random"):
            add(f"ref:null-{mode}-{i}", "reference", f"ref null {mode}", "reference", op="null", params={"mode": mode})
    add("ref:null-uniform", "reference", "ref null uniform", "reference", op="null", params={"mode": "uniform"})
    # far models in the judge's panel
    for i, d in enumerate(datasets):
        add(f"panel-far-{i}", "panel", "panel other-data", "panel", **trained(far[i % len(far)], f"other:{d}"))
    add("panel-untrained", "panel", "panel untrained", "panel", **trained(src_arch, "owner", 0))
    add("panel-null", "panel", "panel null", "panel", op="null", params={"mode": "random"})
    # added in 0.12, with seeds of their own so that every model above stays cached: students of
    # a second recipe held out of training (a classifier's: Hinton's soft labels at T = 4), and a
    # reference panel of at least REFERENCE_MIN answers
    seed = iter(range(600_000, 700_000))
    for k, (rname, (opts, lr)) in enumerate(_HELD_RECIPES.get(kind, {}).items()):
        for arch in (held_arch, students[0]):
            for i in range(5 * t):
                student(f"kd:test:h{k}:{rname}:{arch}-{i}", rname, opts, lr, arch, "test")
    n_ref = sum(e.split == "reference" for e in out)
    per_model = 1 + len(_SERVED[kind])
    for i, (arch, data) in enumerate(plan_ref * (1 + REFERENCE_MIN // per_model)):
        if n_ref >= REFERENCE_MIN:
            break
        par = add(f"ref:more-{i}", "reference", ref_family(arch, data), "reference", **trained(arch, data))
        for api, params in _SERVED[kind]:
            served(par, api, params)
        n_ref += per_model
    return out


def _other_teachers(
    kind: str, prof: Profile, entries: list[Entry], src_arch: str, other: list[str], held_arch: str, base_lr: float, ep: int
) -> list[Entry]:
    """Students of *independent* teachers, added in 0.31 with seeds of their own (every model
    above stays cached).  A student of the source is a positive; a student of any other teacher,
    distilled with the same recipe into the same family, is innocent, and V cannot tell them
    apart from what it learnt: it scores a student of the recipes it was shown, whoever the
    teacher (a quick classification claim of 0.30 accused 19 of 192 students of fresh independent
    teachers: ``scripts/metav_foreign_students.py``, docs/benchmarks.md §13).  So they join

    * the **reference** split: students of reference teachers, the ensemble's KD recipe and each
      training recipe into each training family, raw and served through the task's APIs (144,
      108 and 72 answers at the quick profile, beside 1/α = 100), so the conformal rank counts
      them: a source's student is accused only when V scores it above the other teachers'
      students too;
    * the **test** split, as innocents the benchmark reports: every recipe (the held-out one too)
      into the held-out family and the first student family, from the test split's independents.

    Not the training split: as training negatives (0.31's first run, docs/benchmarks.md §13) they
    cost every held-out student in classification (17 → 0 of 60) and regression (10 → 2 of 40).
    The held-out family and recipe stay out of the reference: a fresh draw of foreign students
    (``metav_foreign_students.py --seed-base 1400000``) measures them."""
    t = {"tiny": 1, "quick": 2}.get(prof.name, 4)
    far = _FAR_ARCHS[kind]
    families = [a for a in dict.fromkeys([*other, src_arch, *far]) if a != held_arch]
    kd_epochs = max(2, ep)
    recipes = list(_RECIPES[kind].items())
    # the range's first seeds went to the first run's training negatives (one per recipe and
    # family, and one per recipe in val): skipping them keeps that run's test and reference
    # models, so the two runs differ only in what V was trained on
    seed = iter(range(1_100_000 + len(recipes) * (len(families) + 1), 1_200_000))
    held = list(_HELD_RECIPES.get(kind, {}).items())
    ensemble_kd: tuple[str, tuple[dict[str, Any], float]] = ("kd", ({}, base_lr))
    out: list[Entry] = []

    def teachers(split: str) -> list[Entry]:
        return [
            e
            for e in entries
            if e.split == split
            and e.role in ("negative", "reference")
            and e.op == "train"
            and e.params.get("data") == "owner"
            and e.params.get("epochs")
        ]

    def student(
        name: str, role: str, fam: str, split: str, teacher: Entry, recipe: tuple[str, tuple[dict[str, Any], float]], arch: str
    ) -> Entry:
        rname, (opts, lr) = recipe
        e = Entry(name, role, f"{fam} kd {rname} → {arch}", split, "distill", parent=teacher.name, arch=arch,
                  seed=next(seed), params={"epochs": kd_epochs, "lr": lr, **opts})  # fmt: skip
        out.append(e)
        return e

    pool = teachers("test")
    plan = [(r, a) for r in [ensemble_kd, *recipes, *held] for a in dict.fromkeys([held_arch, families[0]]) for _ in range(t)]
    for i, (r, a) in enumerate(plan):
        student(f"neg:kd:test:{r[0]}:{a}-{i}", "negative", "neg", "test", pool[i % len(pool)], r, a)
    pool = teachers("reference")
    for i, (r, a) in enumerate([(r, a) for r in [ensemble_kd, *recipes] for a in families] * (t + 1)):
        s = student(f"ref:kd:{r[0]}:{a}-{i}", "reference", "ref", "reference", pool[(i * 5) % len(pool)], r, a)
        for api, params in _SERVED[kind]:
            out.append(Entry(f"{s.name}:{api}", "reference", f"{s.family} api-{api}", "reference", "output",
                             parent=s.name, seed=next(seed), params=params))  # fmt: skip
    return out


def default_manifest(kind: str, profile: str = "quick") -> Manifest:
    """The ensemble the benchmark uses for one task kind (see docs/benchmarks.md §13).

    Positives: FTAL, FTLL, RTLL, RTAL at several learning rates, pruning, weight noise,
    distillation into the same and into another architecture family, top-k / rounded APIs;
    held out to the test split: quantization, prune→fine-tune, and (classifiers) label-only APIs.
    Negatives: other seeds, the thief's data, other architecture families, and the negatives' own
    obfuscated variants (the same menu); one architecture family appears only in test.  A panel
    of further independent models (new seeds and every family) checks a claim afterwards."""
    if profile not in PROFILES:
        raise InvalidArgument(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    if kind not in ("classification", "regression", "generation"):
        raise InvalidArgument(f"unknown task kind {kind!r}; known: classification, regression, generation")
    prof = PROFILES[profile]
    s = prof.scale[kind]
    ep = prof.epochs[kind]
    if kind == "classification":
        base_lr, ft_lrs, last_lrs = 0.05, [0.01, 0.003, 0.03, 0.001], [0.05, 0.01, 0.1]
        archs, other, held_arch = ["cnn"], ["mlp", "cnn-wide"], "lenet"
        outputs: list[tuple[str, str, dict[str, Any]]] = [("api-top3", "topk", {"k": 3}), ("api-round", "round", {"decimals": 1})]
        held_outputs: list[tuple[str, str, dict[str, Any]]] = [("api-label", "label", {})]
        ft_epochs, src_params = 1, {"fingerprint": True}
    elif kind == "regression":
        base_lr, ft_lrs, last_lrs = 0.003, [0.003, 0.001, 0.01, 0.0003], [0.01, 0.003, 0.03]
        archs, other, held_arch = ["mlp"], ["mlp-tanh", "mlp-deep"], "mlp-wide"
        outputs = [("api-round0.25", "round", {"step": 0.25}), ("api-round0.1", "round", {"step": 0.1})]
        held_outputs = [("api-round0.5", "round", {"step": 0.5})]
        ft_epochs, src_params = max(1, ep // 3), {}
    elif kind == "generation":
        base_lr, ft_lrs, last_lrs = 0.001, [0.001, 0.0003, 0.003, 0.0001], [0.001, 0.003, 0.0003]
        archs, other, held_arch = ["vae"], ["vae-small"], "vae-conv"
        outputs = [("api-4bit", "round", {"bits": 4}), ("api-3bit", "round", {"bits": 3})]
        held_outputs = [("api-2bit", "round", {"bits": 2})]
        ft_epochs, src_params = 1, {}
    else:
        raise InvalidArgument(f"unknown task kind {kind!r}")
    src_arch = archs[0]
    entries: list[Entry] = [
        Entry(
            "source",
            "source",
            "source",
            "train",
            "train",
            arch=src_arch,
            seed=0,
            params={"data": "owner", "epochs": ep, "lr": base_lr, **src_params},
        )
    ]
    seed = iter(range(1000, 100000))

    def family(prefix: str, role: str, fam: str, items: list[dict[str, Any]], held: bool = False) -> list[str]:
        names = []
        for i, (item, split) in enumerate(zip(items, _assign(len(items), held))):
            name = f"{prefix}{fam}-{i}"
            if callable(item.get("parent")):  # a negative's variant comes from a negative of the same split
                item = {**item, "parent": item["parent"](i, split)}
            entries.append(Entry(name, role, f"neg {fam}" if prefix else fam, split, seed=next(seed), **item))
            names.append(name)
        return names

    def rep(xs: list[Any], n: int) -> list[Any]:
        return [xs[i % len(xs)] for i in range(n)]

    def derived_menu(prefix: str, role: str, parents: list[Entry]) -> None:
        """The obfuscation menu applied to ``parents``: round-robin over those of the variant's
        own split (the source for positives), so no test model derives from a training one
        other than the source itself."""

        def par(n: int) -> list[Any]:
            def pick(i: int, split: str) -> str:
                pool = [p for p in parents if p.split == split or p.role == "source"] or parents
                return pool[i % len(pool)].name

            return [pick] * n

        def served(n: int) -> list[Any]:
            """Parents of an API entry: the models of this role and split made so far (the source
            too, for positives), so no two API suspects are the same model behind the same API."""
            used: set[str] = set()

            def pick(i: int, split: str) -> str:
                pool = [
                    e.name
                    for e in entries
                    if e.op != "output" and ((e.role == "source" and role == "positive") or (e.role == role and e.split == split))
                ]
                start = (i * 7) % len(pool)
                order = pool[start:] + pool[:start]
                name = next((x for x in order if x not in used), order[0])
                used.add(name)
                return name

            return [pick] * n

        ft = lambda lr, layers, head: {"lr": lr, "epochs": ft_epochs, "layers": layers, "head": head}
        family(
            prefix,
            role,
            "ftal",
            [dict(op="finetune", parent=p, params=ft(lr, "all", "keep")) for p, lr in zip(par(4 * s), rep(ft_lrs, 4 * s))],
        )
        family(
            prefix,
            role,
            "ftll",
            [dict(op="finetune", parent=p, params=ft(lr, "last", "keep")) for p, lr in zip(par(3 * s), rep(last_lrs, 3 * s))],
        )
        family(
            prefix,
            role,
            "rtll",
            [dict(op="finetune", parent=p, params=ft(lr, "last", "reinit")) for p, lr in zip(par(3 * s), rep(last_lrs, 3 * s))],
        )
        family(
            prefix,
            role,
            "rtal",
            [dict(op="finetune", parent=p, params=ft(lr, "all", "reinit")) for p, lr in zip(par(3 * s), rep(ft_lrs, 3 * s))],
        )
        family(
            prefix,
            role,
            "prune",
            [dict(op="prune", parent=p, params={"rate": r}) for p, r in zip(par(4 * s), rep([0.3, 0.6, 0.5, 0.8], 4 * s))],
        )
        family(
            prefix,
            role,
            "noise",
            [dict(op="noise", parent=p, params={"scale": r}) for p, r in zip(par(4 * s), rep([0.05, 0.1, 0.02, 0.2], 4 * s))],
        )
        family(
            prefix,
            role,
            "distill-same",
            [dict(op="distill", parent=p, arch=src_arch, params={"epochs": max(2, ep), "lr": base_lr}) for p in par(3 * s)],
        )
        family(
            prefix,
            role,
            "distill-other",
            [dict(op="distill", parent=p, arch=other[0], params={"epochs": max(2, ep), "lr": base_lr}) for p in par(3 * s)],
        )
        for fam, mode, kw in outputs:
            family(prefix, role, fam, [dict(op="output", parent=p, params={"mode": mode, **kw}) for p in served(3 * s)])
        # held out: only in test
        family(
            prefix,
            role,
            "quantize",
            [dict(op="quantize", parent=p, params={"bits": b}) for p, b in zip(par(2 * s), rep([8, 4], 2 * s))],
            held=True,
        )
        family(
            prefix,
            role,
            "prune+ft",
            [
                dict(
                    op="compose",
                    parent=p,
                    params={
                        "steps": [
                            {"op": "prune", "params": {"rate": 0.5}},
                            {"op": "finetune", "params": ft(ft_lrs[0], "all", "keep")},
                        ]
                    },
                )
                for p in par(2 * s)
            ],
            held=True,
        )
        for fam, mode, kw in held_outputs:
            family(
                prefix, role, fam, [dict(op="output", parent=p, params={"mode": mode, **kw}) for p in served(3 * s)], held=True
            )

    derived_menu("", "positive", [entries[0]])
    train = lambda arch, data: dict(op="train", arch=arch, params={"data": data, "epochs": ep, "lr": base_lr})
    negs: list[str] = family("", "negative", "indep-seed", [train(src_arch, "owner") for _ in range(6 * s)])
    negs += family("", "negative", "indep-data", [train(src_arch, "thief") for _ in range(3 * s)])
    for a in other:
        negs += family("", "negative", f"indep-{a}", [train(a, "owner") for _ in range(3 * s)])
    family("", "negative", f"indep-{held_arch}", [train(held_arch, "owner") for _ in range(3 * s)], held=True)
    # the negatives' own obfuscated variants, from independent models in train/val/test alike
    derived_menu("neg:", "negative", [e for e in entries if e.name in set(negs)])
    # the fresh panel: never trained on, validated on or tested
    panel = [
        train(a, d) for a, d in [(src_arch, "owner")] * 4 + [(src_arch, "thief")] + [(a, "owner") for a in other + [held_arch]]
    ]
    for i, item in enumerate(panel * s):
        entries.append(Entry(f"panel-{i}", "panel", "panel " + str(item["arch"]), "panel", seed=next(seed), **item))
    # the source's recipe with other seeds (the seeds scripts/metav_teacher_rank.py measured)
    src = entries[0]
    for i in range(prof.replicates.get(kind, 0)):
        entries.append(
            Entry(
                f"replicate-{i}",
                "replicate",
                "replicate",
                "replicate",
                "train",
                arch=src.arch,
                seed=REPLICATE_SEED + i,
                params=dict(src.params),
            )
        )
    entries += _coverage(kind, prof, src_arch, other, held_arch, base_lr, ep)
    entries += _other_teachers(kind, prof, entries, src_arch, other, held_arch, base_lr, ep)
    task = {"kind": kind, **prof.task_sizes.get(kind, {})}
    m = Manifest(task, entries, profile)
    m.validate(f"default {kind} manifest")
    return m
