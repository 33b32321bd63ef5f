"""Real labelled text that installs offline: the Debian ``fortunes`` packages.

A fortune file is plain text, one entry per record, records separated by a line holding only
``%`` (the input format of ``strfile``).  Two tasks are built from them:

* ``fortunes-topic`` — English entries labelled by the file they come from
  (``/usr/share/games/fortunes/{computers,people,politics,science}``; package ``fortunes``);
* ``fortunes-language`` — entries labelled by language: English (``fortunes``), German
  (``fortunes-de``: ``de/*``), Italian (``fortunes-it``: ``it/*``), Spanish (``fortunes-es``:
  ``es/*``).

Both are balanced by sampling at most ``per_class`` entries of each label (seeded), and split
80/20 by a fixed seeded shuffle.  Nothing is downloaded: ``scripts/ensure-data.sh`` installs the
Debian packages, or ``root=`` / ``FREQPRINT_FORTUNES`` point at a copy of the folder.

Hostile files cannot exhaust memory: a file larger than ``MAX_FILE_BYTES`` is refused, an entry is
cut at ``MAX_ENTRY_CHARS``; bytes that are not UTF-8 are read as Latin-1 (older German files).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from freqprint.errors import FreqprintError, InvalidArgument, UnreadableFile

__all__ = ["TASKS", "TextDataset", "find_fortunes", "load_fortunes", "read_fortune_file"]

MAX_FILE_BYTES = 32 * 2**20
MAX_ENTRY_CHARS = 2000
DEFAULT_ROOT = Path("/usr/share/games/fortunes")
TOPICS = ("computers", "people", "politics", "science")
LANGUAGES = {"en": None, "de": "de", "it": "it", "es": "es"}  # label -> sub-folder (None: the English top level)
TASKS = ("fortunes-topic", "fortunes-language")


@dataclass
class TextDataset:
    """Texts and integer labels, held in memory."""

    texts: list[str]
    labels: torch.Tensor
    classes: list[str]
    name: str
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, n: int | None, seed: int = 0) -> TextDataset:
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return TextDataset(
            [self.texts[i] for i in idx.tolist()], self.labels[idx], self.classes, self.name, dict(self.meta, subset=n)
        )


def read_fortune_file(path: str | Path) -> list[str]:
    """The entries of one fortune file (``%``-separated records), stripped, empty ones dropped."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FreqprintError(f"{p} is {size} bytes; a fortune file is at most {MAX_FILE_BYTES}")
        raw = p.read_bytes()
    except OSError as e:
        raise UnreadableFile(f"cannot read fortune file {p}: {e.strerror or e}") from None
    if b"\x00" in raw:
        raise FreqprintError(f"{p} is not a fortune text file (it holds NUL bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    entries: list[str] = []
    cur: list[str] = []
    for line in text.splitlines():
        if line.strip() == "%":
            entries.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    entries.append("\n".join(cur))
    return [e.strip()[:MAX_ENTRY_CHARS] for e in entries if e.strip()]


def find_fortunes(root: str | Path | None = None) -> Path:
    cands = [Path(root)] if root else []
    if os.environ.get("FREQPRINT_FORTUNES"):
        cands.append(Path(os.environ["FREQPRINT_FORTUNES"]))
    cands.append(DEFAULT_ROOT)
    for c in cands:
        if c.is_dir():
            return c
    raise FreqprintError(
        f"fortune files not found (looked in {', '.join(map(str, cands))}); install the Debian packages "
        "fortunes fortunes-de fortunes-it fortunes-es (scripts/ensure-data.sh) or pass root="
    )


def _folder_entries(d: Path) -> list[str]:
    """Every entry of every fortune file directly in ``d`` (index ``.dat`` and ``.u8`` twins skipped)."""
    out: list[str] = []
    for f in sorted(d.iterdir()):
        if f.is_file() and not f.is_symlink() and f.suffix not in (".dat", ".u8") and not f.name.startswith("."):
            out += read_fortune_file(f)
    return out


def load_fortunes(
    task: str,
    split: str = "train",
    root: str | Path | None = None,
    per_class: int = 600,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> TextDataset:
    """``fortunes-topic`` or ``fortunes-language`` (module docstring), balanced and split."""
    if task not in TASKS:
        raise InvalidArgument(f"unknown text task {task!r}; known: {', '.join(TASKS)}")
    if split not in ("train", "test"):
        raise InvalidArgument(f"split must be 'train' or 'test', got {split!r}")
    base = find_fortunes(root)
    groups: dict[str, list[str]] = {}
    if task == "fortunes-topic":
        for t in TOPICS:
            if not (base / t).is_file():
                raise FreqprintError(f"{base / t} is missing (Debian package fortunes)")
            groups[t] = read_fortune_file(base / t)
    else:
        for lang, sub in LANGUAGES.items():
            d = base / sub if sub else base
            if not d.is_dir():
                raise FreqprintError(f"{d} is missing (Debian package fortunes-{sub})")
            groups[lang] = _folder_entries(d)
    rng = random.Random(seed)
    texts, labels = [], []
    classes = list(groups)
    for i, c in enumerate(classes):
        entries = sorted(set(groups[c]))  # duplicates across files would leak between the splits
        if len(entries) < 10:
            raise FreqprintError(f"{task}: class {c!r} has only {len(entries)} entries")
        rng.shuffle(entries)
        entries = entries[:per_class]
        cut = int(round(len(entries) * (1 - test_fraction)))
        part = entries[:cut] if split == "train" else entries[cut:]
        texts += part
        labels += [i] * len(part)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return TextDataset(
        [texts[j] for j in order],
        torch.tensor([labels[j] for j in order], dtype=torch.long),
        classes,
        task,
        {"root": str(base), "split": split, "per_class": per_class},
    )
