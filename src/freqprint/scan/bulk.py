"""Bulk scans: every checkpoint under some paths, matched against a registry, as JSON Lines.

**What is a checkpoint.**  Walking the given files and folders (symlinks are not followed):

* a folder holding a ``*.safetensors.index.json`` or a Hugging Face ``config.json`` beside
  ``*.safetensors`` files is *one* checkpoint (sharded weights read through the index);
* a **Hugging Face hub cache** (a folder holding ``models--*/snapshots``) is read through
  ``huggingface_hub.scan_cache_dir`` (:func:`cache_checkpoints`): one checkpoint per model
  revision, read through the snapshot's symlinks, and a revision whose weight blobs were already
  read (shared with another revision) is read once;
* otherwise every file named ``*.safetensors``, ``*.gguf``, ``*.onnx``, ``*.pt``, ``*.pth``, ``*.bin`` or ``*.ckpt`` is one
  (torch files through ``torch.load(weights_only=True)``, never unpickled), and sub-folders are
  walked the same way.  Other files are not checkpoints and are skipped silently.

**One record per checkpoint**, one JSON object per line: ``path``, ``sha256`` (of the content:
the file, or for a folder of its index and every shard it names), ``status`` (``match``, ``none``
or ``error``), the ``matches`` with their p-values and each key's ``trust`` (``verified`` or
``bare``: :mod:`freqprint.scan.store`), ``derived_from``: the registered parents the checkpoint
derives from (:func:`~freqprint.verification.parent.parent_lineage`, decoders), the one-line
``error``, the registry ``state`` (a hash of the registered commitments, flags, trust and
parents), the screen's ``probe_seed`` (its random draw of
channels, so that a match can be repeated: :meth:`~freqprint.scan.store.KeyStore.match`) and
the seconds spent.  Each record is appended as soon as
its checkpoint is done, so an interrupted scan keeps what it did; **resume**: a second run over the
same output skips every checkpoint whose content hash already has a record made against the same
registry state — moved or renamed files included, changed files not — and skips a file whose
device, inode, size and modification time match a record's (``stat``) before reading it at all.
**Concurrent scans** on one output take turns under an exclusive ``flock``: each re-reads what the
others appended before it writes, and a checkpoint already recorded is not written again.

**Executors** (:mod:`freqprint.executor`).  ``local`` (the default) runs a process pool of
``workers`` processes on this machine; ``ray`` submits the same task to a Ray cluster (``address=None`` starts a local one,
``"auto"`` or ``ray://host:port`` joins an existing cluster).  At most ``2·workers`` checkpoints
are in flight, so the parent's memory does not grow with the number of files; each worker holds
one open checkpoint (read lazily, tensor by tensor) and the registry's sketches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freqprint.errors import FreqprintError, InvalidArgument, UnreadableFile
from freqprint.executor import EXECUTORS, create_executor
from freqprint.io.files import hash_file
from freqprint.scan.sketch import PROBE_CHANNELS

try:  # POSIX: concurrent scans on one output take turns appending (_Output)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "cache_checkpoints",
    "EXECUTORS",
    "ScanSummary",
    "check_scan_options",
    "content_hash",
    "find_checkpoints",
    "registry_state",
    "scan",
    "scan_one",
    "stat_signature",
]

CHECKPOINT_SUFFIXES = (".safetensors", ".gguf", ".onnx", ".pt", ".pth", ".bin", ".ckpt")


def _is_model_folder(d: Path) -> bool:
    try:
        names = [p.name for p in d.iterdir()]
    except OSError:
        return False
    if any(n.endswith(".safetensors.index.json") for n in names):
        return True
    return "config.json" in names and any(n.endswith(".safetensors") for n in names)


def _is_hf_cache(d: Path) -> bool:
    """A Hugging Face hub cache folder: it holds ``models--<org>--<name>/snapshots``."""
    try:
        return any(c.name.startswith("models--") and (c / "snapshots").is_dir() for c in d.iterdir() if not c.is_symlink())
    except OSError:
        return False


def cache_checkpoints(root: Path) -> Iterator[Path]:
    """The checkpoints of a Hugging Face hub cache (``huggingface_hub.scan_cache_dir``): per
    model revision, its snapshot folder when that is a model folder, else each weight file in it
    (snapshot paths: symlinks into the cache's blobs, read through them).  A checkpoint whose
    weight blobs were already yielded — revisions sharing their weights, or another repository
    holding the same files: blobs are named by their content hash — is yielded once; blobs that
    resolve outside the cache are never read.  Repositories in name order, and within one the
    revisions with a ref (``main``) first."""
    try:
        from huggingface_hub import scan_cache_dir
    except ImportError:
        raise FreqprintError(f"{root}: scanning a Hugging Face cache needs huggingface_hub (the transformers extra)") from None
    try:
        info = scan_cache_dir(root)
    except Exception as e:  # CacheNotFound, or a folder that is not a cache after all
        raise FreqprintError(f"{root}: not a readable Hugging Face cache ({type(e).__name__})") from None
    inside = root.resolve()
    seen: set[frozenset[str]] = set()
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for rev in sorted(repo.revisions, key=lambda r: (not r.refs, r.commit_hash)):
            blobs = {f.file_path: f.blob_path.resolve() for f in rev.files}
            if any(inside not in b.parents for b in blobs.values()):
                continue  # a blob outside the cache: not this cache's to read
            snap = Path(rev.snapshot_path)
            if _is_model_folder(snap):  # its weights: the safetensors files and a shard index (not config.json)
                weights = [f for f in blobs if f.parent == snap and f.name.endswith((".safetensors", ".safetensors.index.json"))]
                units = [(snap, [blobs[f].name for f in weights])]
            else:
                units = [(f, [b.name]) for f, b in sorted(blobs.items()) if f.name.endswith(CHECKPOINT_SUFFIXES)]
            for path, used in units:  # a blob's name is its content hash (SHA-256 for LFS files)
                key = frozenset(used)
                if key not in seen:
                    seen.add(key)
                    yield path


def find_checkpoints(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every checkpoint under ``paths`` (module docstring), in a stable order, lazily."""
    for p in paths:
        p = Path(p)
        if p.is_symlink():
            continue
        if p.is_file():
            yield p
        elif p.is_dir():
            if _is_hf_cache(p):
                yield from cache_checkpoints(p)
                continue
            if _is_model_folder(p):
                yield p
                continue
            try:
                children = sorted(p.iterdir())
            except OSError as e:
                raise FreqprintError(f"{p}: cannot list ({e.strerror})") from None
            for c in children:
                if c.is_symlink():
                    continue
                if c.is_dir():
                    yield from find_checkpoints([c])
                elif c.is_file() and c.name.endswith(CHECKPOINT_SUFFIXES):
                    yield c
        else:
            raise UnreadableFile(f"{p}: no such file or folder")


def content_hash(path: Path) -> str:
    """SHA-256 of a checkpoint's content; for a folder, of its index (or config) and the shards."""
    h = hashlib.sha256()
    if path.is_dir():
        files = sorted(q for q in path.iterdir() if q.is_file() and (q.name.endswith(".safetensors") or q.name.endswith(".json")))
        for q in files:
            h.update(q.name.encode() + b"\0")
            hash_file(q, h)
    else:
        hash_file(path, h)
    return h.hexdigest()


def registry_state(registry_path: str | Path) -> str:
    """A hash of the registry's commitments and flags: results made against another state are redone."""
    from freqprint.scan.store import KeyStore

    with KeyStore(registry_path, create=False) as reg:
        rows = sorted(f"{e.commitment}:{int(e.always_test)}:{e.trust}" for e in reg.entries())
        rows += sorted(f"parent:{p.name}:{p.digest}:{p.added}" for p in reg.parent_entries())
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


# one registry per worker process, opened on first use
_WORKER: dict[str, Any] = {}


def scan_one(
    registry_path: str,
    path: str,
    alpha: float = 1e-6,
    screen: bool = True,
    state: str = "",
    digest: str | None = None,
    signature: str | None = None,
    probe: bool = True,
) -> dict[str, Any]:
    """The record of one checkpoint (module docstring); every failure becomes ``status: error``.
    ``probe=False`` sketches every wide reading whole (:meth:`~freqprint.scan.store.KeyStore.screen`)."""
    from freqprint.scan.store import KeyStore

    t0 = time.perf_counter()
    rec: dict[str, Any] = {"path": path, "sha256": digest, "state": state}
    if signature is not None:
        rec["stat"] = signature
    try:
        if _WORKER.get("path") != (registry_path, state):  # reopened whenever the registry changed
            if "reg" in _WORKER:
                _WORKER["reg"].close()
            _WORKER.clear()
            _WORKER.update(path=(registry_path, state), reg=KeyStore(registry_path, create=False))
        if rec["sha256"] is None:
            rec["sha256"] = content_hash(Path(path))
        res = _WORKER["reg"].match(path, alpha=alpha, screen=screen, probe=PROBE_CHANNELS if probe else 0)
        rec["matches"] = [m.__dict__ for m in res.found]
        rec["derived_from"] = [p.__dict__ for p in res.derived_from]
        rec["status"] = "match" if res.found or res.derived_from else "none"
        rec["tested"], rec["screened"] = res.tested, res.screened
        rec["probe_seed"] = res.probe_seed  # the probe's draw, so that a rerun can repeat it
    except FreqprintError as e:
        rec.update(status="error", error=str(e).splitlines()[0] if str(e) else type(e).__name__)
    except (OSError, MemoryError, RuntimeError, ValueError) as e:  # a hostile file must not stop a scan
        rec.update(status="error", error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])
    rec["seconds"] = round(time.perf_counter() - t0, 4)
    return rec


@dataclass
class ScanSummary:
    checkpoints: int = 0
    skipped: int = 0  # already in the output (same content, same registry state)
    matched: int = 0
    none: int = 0
    errors: int = 0
    seconds: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)  # this run's records (kept only when asked)

    @property
    def done(self) -> int:
        return self.matched + self.none + self.errors


def stat_signature(path: Path) -> str:
    """What identifies unchanged content without reading it: device, inode, size and modification
    time of the file (of every weights and JSON file, for a model folder)."""

    def one(q: Path) -> str:
        st = q.stat()
        return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    if path.is_dir():
        files = sorted(q for q in path.iterdir() if q.is_file() and (q.name.endswith(".safetensors") or q.name.endswith(".json")))
        return hashlib.sha256("\n".join(f"{q.name}={one(q)}" for q in files).encode()).hexdigest()[:32]
    return one(path)


class _Output:
    """The JSON Lines output, shared safely by concurrent scans.

    Every read of what others appended and every append happen under an exclusive ``flock`` on the
    file, and a record is appended only if no record for the same content (same registry state) is
    there yet: two scans over one output never write a checkpoint twice, and neither loses one.
    Records made against the same state by an earlier or a concurrent scan are "done", by content
    hash and by :func:`stat_signature` (so an unchanged file is skipped before it is read); within
    one scan, two paths with the same content each get their record, as before."""

    def __init__(self, path: Path, state: str) -> None:
        self.path, self.state = path, state
        self.hashes: set[str] = set()
        self.signatures: set[str] = set()
        self._pairs: set[tuple[str, str]] = set()  # (content hash, path) of every record, this scan's too
        self._offset, self._ends_with_newline = 0, True
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a+b")
        with self._locked():
            self._read_new()

    def close(self) -> None:
        self._f.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is not None:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)

    def _read_new(self) -> None:
        """What was appended since the last look (by this scan or another), complete lines only."""
        self._f.seek(self._offset)
        data = self._f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by an interrupted run
            if isinstance(r, dict) and r.get("state") == self.state:
                if isinstance(r.get("sha256"), str):
                    self.hashes.add(r["sha256"])
                    self._pairs.add((r["sha256"], str(r.get("path"))))
                if isinstance(r.get("stat"), str):
                    self.signatures.add(r["stat"])
        self._offset += end
        if data:
            self._ends_with_newline = data.endswith(b"\n")

    def refresh(self) -> None:
        with self._locked():
            self._read_new()

    def append(self, rec: dict[str, Any]) -> bool:
        """Append ``rec`` unless the same content at the same path is already recorded; True when written."""
        pair = (rec["sha256"], str(rec.get("path"))) if isinstance(rec.get("sha256"), str) else None
        with self._locked():
            self._read_new()
            if pair is not None and pair in self._pairs:
                return False
            line = json.dumps(rec, sort_keys=True).encode() + b"\n"
            if not self._ends_with_newline:  # after a line cut by an interrupted run
                line = b"\n" + line
            self._f.seek(0, 2)
            self._f.write(line)
            self._f.flush()
            self._offset = self._f.tell()
            self._ends_with_newline = True
            if pair is not None:
                self._pairs.add(pair)
            return True


def check_scan_options(
    paths: Iterable[str | Path], registry: str | Path, alpha: float, executor: str, workers: int
) -> list[Path]:
    """Every option checked before anything is walked or scanned (one error, not one per file)."""
    if not (0 < alpha < 1):  # NaN fails too
        raise InvalidArgument(f"alpha must be in (0, 1), got {alpha}")
    if executor not in EXECUTORS:
        raise InvalidArgument(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgument(f"workers must be an integer >= 1, got {workers!r}")
    if not Path(registry).is_file():
        raise UnreadableFile(f"{registry}: no such registry")
    out = [Path(p) for p in paths]
    if not out:
        raise InvalidArgument("no paths to scan")
    missing = [str(p) for p in out if not p.exists() and not p.is_symlink()]
    if missing:
        raise UnreadableFile(
            f"{missing[0]}: no such file or folder" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    return out


def scan(
    paths: Iterable[str | Path],
    registry: str | Path,
    out: str | Path,
    alpha: float = 1e-6,
    screen: bool = True,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    progress: Callable[[int, dict[str, Any] | None], None] | None = None,
    keep_records: bool = False,
    probe: bool = True,
) -> ScanSummary:
    """Scan checkpoints into the JSON Lines file ``out`` (appended; module docstring).
    ``progress(total_seen, record)`` is called as checkpoints are found and finished.
    ``probe=False``: the screen sketches every wide reading whole (slower, no probe misses)."""
    paths = check_scan_options(paths, registry, alpha, executor, workers)
    registry, out = str(Path(registry).resolve()), Path(out)
    state = registry_state(registry)
    summary = ScanSummary()
    t0 = time.perf_counter()
    output = _Output(out, state)
    ex = create_executor(executor, workers, address)
    try:
        pending: list[Any] = []

        def skipped() -> None:
            summary.skipped += 1
            if progress:
                progress(summary.checkpoints, None)

        def record(r: dict[str, Any]) -> None:
            if not output.append(r):  # another scan on the same output recorded this content meanwhile
                skipped()
                return
            key = {"match": "matched", "none": "none", "error": "errors"}[r["status"]]
            setattr(summary, key, getattr(summary, key) + 1)
            if keep_records:
                summary.records.append(r)
            if progress:
                progress(summary.checkpoints, r)

        for path in find_checkpoints(paths):
            summary.checkpoints += 1
            output.refresh()
            try:
                sig = stat_signature(path)
                if sig in output.signatures:  # unchanged since it was scanned: not even read
                    skipped()
                    continue
                digest = content_hash(path)
            except OSError as e:
                record(
                    {
                        "path": str(path),
                        "sha256": None,
                        "state": state,
                        "status": "error",
                        "error": f"cannot read ({e.strerror})",
                        "seconds": 0.0,
                    }
                )
                continue
            if digest in output.hashes:
                skipped()
                continue
            pending.append(ex.submit(scan_one, registry, str(path), alpha, screen, state, digest, sig, probe))
            while len(pending) >= 2 * workers:
                finished, pending = ex.wait(pending)
                for _, r in finished:
                    record(r)
        while pending:
            finished, pending = ex.wait(pending)
            for _, r in finished:
                record(r)
    finally:
        ex.close()
        output.close()
    summary.seconds = time.perf_counter() - t0
    return summary
