"""One evidence report per verdict: what was decided, on what evidence, with what error probability,
from which inputs, and how to reproduce it — as plain, typed data.

A report is built from a verdict's own report (``verify``, ``trace``, ``lineage``, ``claim check``,
``metav verify``; a ``scan`` gets a summary) and the context only the caller knows (the files it
read, the command line, where a commitment was published).  Its JSON (:meth:`EvidenceReport.to_json`)
is a pure function of those: no wall time, no date, sorted keys, so rerunning the command gives a
byte-identical file (``tests/test_report.py``).  :mod:`freqprint.report.html` draws the same
content for a person; :mod:`freqprint.report.sign` signs the JSON.

**The verdict in one word.**  ``derived`` (the test's p-value is at most α), ``not derived`` (it
ran on material it could compare and p > α) or ``inconclusive`` (nothing in the suspect could be
compared: no tensor reads as the module's filters, a decoder of another architecture, a claim
whose secret does not open it).  The exit codes stay 0 / 1 / 1.

**The error probability.**  For the white-box channels the p-value is an upper bound on the
probability that an unrelated model (the null each channel's docstring states) gives evidence this
strong; for MetaV it is a conformal rank among the claim's reference models (valid for that
population as a whole) combined with an agreement test (docs/security.md says which suspects it
holds for).  A report states which.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from freqprint.errors import InvalidArgument
from freqprint.io.files import sha256_file

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Channel",
    "EvidenceReport",
    "Figure",
    "InputDigest",
    "digest_inputs",
    "environment",
    "reproducing_command",
]

SCHEMA_VERSION = "1.0"
VERDICTS = ("derived", "not derived", "inconclusive")
# the values of these options never enter a report (a reproducing command names them instead)
SECRET_OPTIONS = ("--secret",)


@dataclass
class InputDigest:
    """One file the verdict read: its role, the path as given, its SHA-256 and size."""

    role: str
    path: str
    sha256: str
    bytes: int


@dataclass
class Figure:
    """The data behind one picture; :mod:`freqprint.report.html` draws it by ``kind``."""

    kind: str
    title: str
    caption: str
    data: dict[str, Any]


@dataclass
class Channel:
    """One channel's evidence: its p-value (log₁₀; None when it did not run), finding, summary and
    pictures."""

    name: str
    ran: bool
    found: bool
    log10_p: float | None
    summary: str
    figures: list[Figure] = field(default_factory=list)


@dataclass
class EvidenceReport:
    """A verdict as an arbiter reads it (module docstring)."""

    command: str  # verify, trace, lineage, claim check, metav verify, scan
    verdict: str  # one of VERDICTS
    headline: str  # the verdict in one sentence
    means: list[str]
    does_not_mean: list[str]
    error_probability: str  # one sentence: what the p-value bounds
    log10_p: float | None
    alpha: float | None
    channels: list[Channel]
    accounting: list[dict[str, Any]]  # the Bonferroni table: channel, log10_p, factor, adjusted, alpha share
    inputs: list[InputDigest]
    commitment: dict[str, Any]
    environment: dict[str, Any]
    reproduce: str  # the exact command
    limitations: list[str]
    result: dict[str, Any]  # the verdict's own report (``to_dict()``, no wall time)
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise InvalidArgument(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, two-space indent, UTF-8 text, a final newline; no NaN or
        infinity (an infinite log₁₀ p becomes null and the report says so in its sentences)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvidenceReport:
        d = dict(d)
        d["channels"] = [Channel(**{**c, "figures": [Figure(**f) for f in c.get("figures", [])]}) for c in d["channels"]]
        d["inputs"] = [InputDigest(**i) for i in d["inputs"]]
        return cls(**d)

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "derived" else 1


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


# ---------------------------------------------------------------------------------------------
# context: the inputs' digests, the environment, the command


def digest_inputs(files: Iterable[tuple[str, str | os.PathLike[str] | None]]) -> list[InputDigest]:
    """Every file read, as ``(role, path)``; a folder (a sharded or Hugging Face checkpoint) is
    recorded file by file in sorted order, roles ``"<role>/<relative path>"``.  None paths and
    ``py:`` specs (code, not files) are skipped."""
    out: list[InputDigest] = []
    for role, p in files:
        if p is None or str(p).startswith("py:"):
            continue
        path = Path(p)
        if path.is_dir():
            for f in sorted(q for q in path.rglob("*") if q.is_file()):
                digest, n = sha256_file(f)
                out.append(InputDigest(f"{role}/{f.relative_to(path).as_posix()}", str(f), digest, n))
        else:
            digest, n = sha256_file(path)
            out.append(InputDigest(role, str(p), digest, n))
    return out


def _commit() -> str:
    """The git commit of the freqprint source in use, ``-dirty`` when tracked files under ``src/``
    changed; ``"release"`` for an installed package (no checkout of freqprint around it — a wheel
    inside some other repository's folder is a release too)."""
    package = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(package), *args], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() / "src" / "freqprint" != package:
        return "release"
    rev = git("rev-parse", "HEAD")
    if rev is None:
        return "release"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", str(package.parent))
    return rev + ("-dirty" if dirty else "")


def environment() -> dict[str, Any]:
    """Tool version and commit, torch version, thread count, Python version: what a rerun needs to
    match for a byte-identical report (another thread count may move floating-point sums)."""
    import torch

    import freqprint

    return {
        "freqprint": freqprint.__version__,
        "commit": _commit(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": ".".join(map(str, sys.version_info[:3])),
    }


def reproducing_command(argv: Sequence[str] | None = None) -> str:
    """The command line as run (``freqprint`` and its arguments), with the value of ``--secret``
    replaced by ``"$FREQPRINT_SECRET"``: a report never holds a secret."""
    out: list[str] = []
    hide = False
    for a in sys.argv[1:] if argv is None else argv:
        name, eq, _ = a.partition("=")
        if hide:
            out.append("$FREQPRINT_SECRET")
        elif name in SECRET_OPTIONS and eq:
            out.append(f"{name}=$FREQPRINT_SECRET")
        else:
            out.append(shlex.quote(a))
        hide = not hide and not eq and name in SECRET_OPTIONS
    return " ".join(["freqprint", *out])


# ---------------------------------------------------------------------------------------------
# the JSON schema (draft 2020-12): what ``report verify`` and the tests check a report against

_NUM_OR_NULL = {"type": ["number", "null"]}
_STR_LIST = {"type": "array", "items": {"type": "string"}}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "freqprint evidence report",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "schema_version",
        "command",
        "verdict",
        "headline",
        "means",
        "does_not_mean",
        "error_probability",
        "log10_p",
        "alpha",
        "channels",
        "accounting",
        "inputs",
        "commitment",
        "environment",
        "reproduce",
        "limitations",
        "result",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "command": {"enum": ["verify", "trace", "lineage", "claim check", "metav verify", "scan"]},
        "verdict": {"enum": list(VERDICTS)},
        "headline": {"type": "string", "minLength": 1},
        "means": _STR_LIST,
        "does_not_mean": _STR_LIST,
        "error_probability": {"type": "string", "minLength": 1},
        "log10_p": {"type": ["number", "null"], "maximum": 0},
        "alpha": {"type": ["number", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "channels": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "ran", "found", "log10_p", "summary", "figures"],
                "properties": {
                    "name": {"type": "string"},
                    "ran": {"type": "boolean"},
                    "found": {"type": "boolean"},
                    "log10_p": _NUM_OR_NULL,
                    "summary": {"type": "string"},
                    "figures": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["kind", "title", "caption", "data"],
                            "properties": {
                                "kind": {"type": "string"},
                                "title": {"type": "string"},
                                "caption": {"type": "string"},
                                "data": {"type": "object"},
                            },
                        },
                    },
                },
            },
        },
        "accounting": {"type": "array", "items": {"type": "object"}},
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["role", "path", "sha256", "bytes"],
                "properties": {
                    "role": {"type": "string"},
                    "path": {"type": "string"},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "bytes": {"type": "integer", "minimum": 0},
                },
            },
        },
        "commitment": {"type": "object"},
        "environment": {
            "type": "object",
            "required": ["freqprint", "commit", "torch", "threads", "python"],
        },
        "reproduce": {"type": "string", "pattern": "^freqprint "},
        "limitations": _STR_LIST,
        "result": {"type": "object"},
    },
}
