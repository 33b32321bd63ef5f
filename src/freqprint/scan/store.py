"""The fingerprint registry: owner keys and claim bundles in one SQLite file, with a screen.

Three tables, one row per registered key in each (so the registry is one self-contained file,
copied or backed up as such; nothing runs beside it, SQLite is embedded):

* ``keys``, the index: name, kind (``key`` or ``claim``), commitment, shape, trust, and the key's
  shortlist vector (:func:`~freqprint.scan.sketch.sketch_vectors`, 576 float16 numbers);
* ``sketches``: its channel sketch (:mod:`freqprint.scan.sketch`, ``C × dims`` numbers: the
  visible block in float16, the hidden one in int8), read when the key is scored;
* ``bodies``: the key file's bytes and the W₀ the registry regenerated (verified keys), read only
  for a key that gets the full test.

and, beside them, ``parents``: released decoders registered by their sketch
(:class:`~freqprint.verification.parent.ParentSketch`: 32 MLP units per block and 2,048 token
embeddings, float16 — 5.7 MB for SmolLM2-135M, whose GGUF file is 98 MB) and their file's
SHA-256; every suspect that reads as a decoder is tested against each
(:func:`~freqprint.verification.parent.parent_lineage`, p × the number of parents).

A million keys of 16 channels take about 3.2 KB of index each (``keys`` and ``sketches``) and
2.3 KB of memory each once open (the vectors); bodies are apart (docs/benchmarks.md §12g).

**Trust.**  A key file proves nothing by itself: anyone can extract a "key" from an innocent
model (someone else's fingerprinted model, or any conv layer) and it would match that model.  So
an entry is ``verified`` only when the registry was given the owner's secret and checked that the
key's kernels come from the W₀ it regenerates
(:func:`~freqprint.verification.claim.anchor_key`; a claim bundle also passes
:func:`~freqprint.verification.claim.check_claim`).  What is stored and matched is then that key
anchored at W₀ (the owner's file as submitted, and the W₀ the registry regenerated in a column of
its own), so every match is a test against W₀, whose null is exact for any suspect that
does not derive from the secret's module: neither a forged key (refused) nor a chimera whose
visible block came from an innocent model (matched against W₀ alone) can make an innocent upload
match.  Keys without a secret are ``bare``: accepted only on request, marked in every match.

**Matching** a suspect against every key (:meth:`KeyStore.match`):

1. the suspect is opened lazily (:func:`freqprint.io.checkpoint.open_tensors`): shapes from the header;
2. for every shape group of keys (same kernel basis, D and C), every suspect tensor that reads as
   ``[D′, C′, K, K]`` with ``2·C′ ≥ C`` — the verifier's own candidates — is loaded once; a
   reading of more than twice its probe's channels (``PROBE_CHANNELS``, more for a reading much
   wider than the key) is first probed on that many random channels and goes on only if some
   key shows among them (:mod:`freqprint.scan.sketch`, "The probe"); the
   rest are sketched under the eight symmetries; a group of more than
   :data:`~freqprint.scan.sketch.SHORTLIST` keys is first shortlisted by one product of its
   vectors with the suspect's; the group's keys (or its shortlist) are scored in one batched
   product and the keys whose score passes (``z ≥ Z_PASS``) become candidates;
3. each candidate (and each key registered ``always_test``) gets the full calibrated test,
   :func:`freqprint.verification.verifier.verify`, on the same open file.

A match is reported with the verifier's p-value and with ``p_registry = min(1, p·N)``, N the
number of keys in the registry: testing one suspect against N keys is N tests, and Bonferroni keeps
the family-wise false-positive probability of the whole scan under ``alpha``.  ``found`` uses it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import secrets
import sqlite3
import time
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from typing_extensions import Self

from freqprint.errors import FreqprintError, UnreadableFile
from freqprint.io.checkpoint import TensorStore, all_finite, open_tensors
from freqprint.scan.sketch import (
    PROBE_CHANNELS,
    SHORTLIST,
    VECTOR_DIMS,
    VECTOR_VERSION,
    Z_PASS,
    Z_PROBE,
    Basis,
    basis_from_json,
    basis_of,
    block_dims,
    channel_sketch,
    decode_sketch,
    decoy_sketches,
    decoy_vectors,
    encode_sketch,
    probe_channels,
    probe_count,
    score,
    shortlist,
    shortlist_scores,
    sketch_bytes,
    sketch_vectors,
    suspect_sketch,
)
from freqprint.stats.align import reading_shapes, readings
from freqprint.verification.key import MAX_KEY_BYTES, FingerprintKey
from freqprint.verification.verifier import verify

__all__ = ["Entry", "Match", "MatchResult", "KeyStore", "ParentEntry", "ParentMatch", "Screened"]

PARENT_UNITS = 32  # MLP units per block a registered parent's sketch keeps
PARENT_TOKENS = 2048  # token embeddings it keeps (the residual alignment)


@functools.lru_cache(maxsize=64)
def _dims(basis: str) -> tuple[int, int]:
    return block_dims(basis_from_json(basis))


def _reencoded(basis: str, channels: int, blob: Any) -> Any:
    """A sketch of formats 1–3 (all float16) as format 4 stores it; a blob of another size (a
    damaged row) stays as it was, to be refused when read."""
    dims = _dims(basis)
    if not isinstance(blob, bytes) or len(blob) != 2 * channels * sum(dims):
        return blob
    s = torch.from_numpy(np.frombuffer(blob, dtype=np.float16).reshape(channels, -1).copy())
    return encode_sketch(s, dims).numpy().tobytes()


_KEYS_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    commitment TEXT UNIQUE NOT NULL,
    layer TEXT NOT NULL,
    filters INTEGER NOT NULL,
    channels INTEGER NOT NULL,
    kernel_size INTEGER NOT NULL,
    basis TEXT NOT NULL,
    anchored INTEGER NOT NULL,
    always_test INTEGER NOT NULL,
    added TEXT NOT NULL,
    trust TEXT NOT NULL DEFAULT 'bare',
    vector BLOB
)"""
SCHEMA = (
    _KEYS_TABLE.format(name="keys")
    + """;
CREATE TABLE IF NOT EXISTS sketches (id INTEGER PRIMARY KEY, sketch BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, anchor BLOB, blob BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parents (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, digest TEXT NOT NULL, width INTEGER NOT NULL,
    blocks INTEGER NOT NULL, added TEXT NOT NULL, sketch BLOB NOT NULL
);
"""
)
FORMAT = "freqprint-registry/4"
# migrated on open.  1: no trust (its keys become "bare": none was checked against a secret);
# 1 and 2: sketches and bodies in the keys table (moved to tables of their own); 1 to 3:
# sketches all float16 (the hidden block re-encoded as int8)
OLD_FORMATS = ("freqprint-registry/1", "freqprint-registry/2", "freqprint-registry/3")
_SHARED_TABLES = OLD_FORMATS[:2]
_BATCH = 8192  # rows re-encoded or re-vectorised at a time: memory stays bounded at a million keys
VERIFIED, BARE = "verified", "bare"
_COLUMNS = "name, kind, commitment, layer, filters, channels, kernel_size, basis, anchored, always_test, added, trust"


@dataclass
class Entry:
    name: str
    kind: str
    commitment: str
    layer: str
    filters: int
    channels: int
    kernel_size: int
    basis: str
    anchored: bool
    always_test: bool
    added: str
    trust: str = BARE  # "verified": anchored by the registry at the W₀ of a secret it was given; "bare": as the file says


@dataclass
class Match:
    key: str  # registry name
    commitment: str
    found: bool
    log10_p: float
    log10_p_registry: float
    layer: str
    layout: str
    hits: int
    filters: int
    screen_z: float | None  # None: tested without the screen (always_test, or screen off)
    trust: str = BARE  # the key's (Entry.trust): a "bare" key's match is evidence only for whoever holds that key


@dataclass
class ParentEntry:
    name: str
    digest: str  # SHA-256 of the parent's file as registered ("" for an in-memory model)
    width: int
    blocks: int
    added: str
    sketch_bytes: int


@dataclass
class ParentMatch:
    parent: str  # registry name
    digest: str
    found: bool
    basis: str  # "unit order" (exact p, with the registry's Bonferroni) or "matched units" (a measured rate)
    log10_p: float
    log10_p_registry: float  # × the number of registered parents
    matched: float


@dataclass
class MatchResult:
    suspect: str
    matches: list[Match]  # every key that got the full test, found or not
    keys: int  # keys in the registry
    screened: int  # keys scored by the screen
    tested: int  # keys that got the full test
    seconds: float = 0.0
    shortlisted: int = 0  # keys that got the screen's channel score (all it scored, below SHORTLIST keys per shape)
    probe_seed: int | None = None  # the seed of the screen's probe channels (a rerun with it draws the same)
    probed: int = 0  # the suspect's readings the screen probed on a few channels (per shape group of keys)
    sketched: int = 0  # ... and those it sketched whole (probed ones that passed, and narrow ones)
    extra: dict[str, Any] = field(default_factory=dict)
    parents: list[ParentMatch] = field(default_factory=list)  # every registered parent tested (decoders)

    @property
    def found(self) -> list[Match]:
        return [m for m in self.matches if m.found]

    @property
    def derived_from(self) -> list[ParentMatch]:
        return [p for p in self.parents if p.found]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Screened(NamedTuple):
    """What :meth:`KeyStore.screen` found: ``passed`` maps each key id that passed to its z-score;
    ``scored`` keys were in a group the suspect could match, ``shortlisted`` of them got the
    channel score; ``probed`` readings were probed on a few channels and ``sketched`` readings
    sketched whole (counted per shape group of keys)."""

    passed: dict[int, float]
    scored: int
    shortlisted: int
    probed: int
    sketched: int


@dataclass
class _Group:
    """Registered keys of one shape (basis, D, C): what :meth:`KeyStore.screen` scores at once."""

    basis: Basis
    filters: int
    channels: int
    ids: list[int]
    vectors: tuple[torch.Tensor, ...]  # per block [N, p] float32: the shortlist's (sketch.vector_blocks)
    layers: set[str]  # the layers its keys point at
    sketches: torch.Tensor | None = None  # [N, C, dims] float32 (decoded), kept for a group of at most SHORTLIST keys


class KeyStore:
    """A registry file (created if missing).  ``KeyStore(path).add("owner.key")``, ``.match(suspect)``."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UnreadableFile(f"{self.path}: no such registry")
        if self.path.exists() and self.path.is_dir():
            raise UnreadableFile(f"{self.path} is a directory, not a registry file")
        try:
            self.db = sqlite3.connect(str(self.path))
            if (
                not create
                and self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None
            ):
                self.db.close()  # an empty file or another program's database: never written into
                raise FreqprintError(f"{self.path} is not a freqprint registry (no registry tables)")
            # a new file: 16 KB pages, so that sketches of 2–10 KB share pages (4 KB pages hold one each)
            self.db.execute("PRAGMA page_size=16384")
            self.db.executescript(SCHEMA)
            row = self.db.execute("SELECT v FROM meta WHERE k='format'").fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
                self.db.commit()
            elif row[0] in OLD_FORMATS:
                self._migrate()
            elif row[0] != FORMAT:
                raise FreqprintError(f"{self.path}: unsupported registry format {row[0]!r}")
            self._refresh_vectors()
        except sqlite3.DatabaseError as e:
            raise FreqprintError(f"{self.path} is not a freqprint registry ({e})") from None
        self._groups: dict[tuple[str, int, int], _Group] | None = None
        self._always: list[int] = []  # keys registered always_test (read with the groups)
        self._keys: dict[int, FingerprintKey] = {}
        self._parent_sketches: list[tuple[str, str, Any]] | None = None  # (name, digest, ParentSketch), read on first match

    def _migrate(self) -> None:
        """Formats 1, 2 and 3 to 4, in one transaction.  1 and 2: sketches and bodies move to
        their own tables (a format-1 file has no trust column: its keys become bare, none was
        checked against a secret; nor an anchor column); the pages the bodies leave are reused by
        later adds (``VACUUM`` returns them to the file system).  1 to 3: each float16 sketch is
        re-encoded as an add encodes it (:func:`~freqprint.scan.sketch.encode_sketch`); the
        shortlist vectors a format-3 file holds are kept."""
        self.db.commit()
        self.db.execute("BEGIN IMMEDIATE")  # one writer: a second process opening the file waits, then finds it migrated
        try:
            version = self.db.execute("SELECT v FROM meta WHERE k='format'").fetchone()[0]
            if version in _SHARED_TABLES:
                cols = {r[1] for r in self.db.execute("PRAGMA table_info(keys)")}
                trust = "trust" if "trust" in cols else f"'{BARE}'"
                anchor = "anchor" if "anchor" in cols else "NULL"
                for statement in (
                    "INSERT INTO sketches SELECT id, sketch FROM keys",
                    f"INSERT INTO bodies SELECT id, {anchor}, blob FROM keys",
                    _KEYS_TABLE.format(name="keys_new"),
                    f"INSERT INTO keys_new SELECT id, {_COLUMNS.replace(', trust', '')}, {trust}, NULL FROM keys",
                    "DROP TABLE keys",
                    "ALTER TABLE keys_new RENAME TO keys",
                ):
                    self.db.execute(statement)
            if version in OLD_FORMATS:
                last = -1
                while rows := self.db.execute(
                    "SELECT k.id, k.basis, k.channels, s.sketch FROM keys k JOIN sketches s ON s.id = k.id "
                    "WHERE k.id > ? ORDER BY k.id LIMIT ?",
                    (last, _BATCH),
                ).fetchall():
                    self.db.executemany("UPDATE sketches SET sketch=? WHERE id=?", [(_reencoded(*r[1:]), r[0]) for r in rows])
                    last = rows[-1][0]
                self.db.execute(f"UPDATE meta SET v='{FORMAT}' WHERE k='format'")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _refresh_vectors(self) -> None:
        """Compute every key's shortlist vector (:func:`~freqprint.scan.sketch.sketch_vectors`) from
        its stored sketch when the file's vectors are of another version or none (a file of
        format 1 or 2): the meta row ``vectors`` names the version.  Nothing to do on a current
        file.  (An add computes its vector from the unrounded sketch.)"""
        row = self.db.execute("SELECT v FROM meta WHERE k='vectors'").fetchone()
        if row is not None and row[0] == VECTOR_VERSION:  # every add writes its vector: none is missing
            return
        with self.db:
            last = -1  # in batches of rows: memory stays bounded at a million keys
            while rows := self.db.execute(
                "SELECT k.id, k.basis, k.filters, k.channels, s.sketch FROM keys k JOIN sketches s ON s.id = k.id "
                "WHERE k.id > ? ORDER BY k.id LIMIT ?",
                (last, _BATCH),
            ).fetchall():
                last = rows[-1][0]
                todo: dict[tuple[str, int, int], list[tuple[int, bytes]]] = {}
                for kid, basis, d, c, sk in rows:
                    todo.setdefault((basis, d, c), []).append((kid, sk))
                for (basis, d, c), group in todo.items():
                    b = basis_from_json(basis)
                    sks = self._decoded([r[1] for r in group], [r[0] for r in group], b, c)
                    vecs = sketch_vectors(sks, b, d, c).to(torch.float16).numpy()
                    self.db.executemany("UPDATE keys SET vector=? WHERE id=?", [(v.tobytes(), r[0]) for v, r in zip(vecs, group)])
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('vectors', ?)", (VECTOR_VERSION,))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------
    # add, list, remove

    def add(
        self,
        path: str | Path,
        name: str | None = None,
        always_test: bool = False,
        secret: str | None = None,
        allow_bare: bool = False,
    ) -> Entry:
        """Register a key file or a claim bundle (its commitment checked on load, like any key).

        ``secret``: the owner's secret, given to the registry for this check and not stored.  A
        claim bundle must pass :func:`~freqprint.verification.claim.check_claim` with it, a key
        :func:`~freqprint.verification.claim.anchor_key`; the entry is then ``verified`` and is
        matched against the W₀ the secret regenerates, never against kernels the file supplies.
        Without a secret a key proves nothing (anyone can extract a "key" from an innocent model,
        and it would match that model): it is refused unless ``allow_bare``, and then marked
        ``bare`` in the entry and in every match.  ``always_test``: skip the screen for this key (a
        Transformer host, whose residual stream a thief can rotate: the sketch is not invariant
        to that)."""
        from freqprint.io.files import read_small_file
        from freqprint.verification.claim import (
            ClaimBundle,  # claim imports verify; kept out of import time
        )

        path = Path(path)
        data = read_small_file(path, MAX_KEY_BYTES, "key file")  # read once: the key, the claim and the stored blob
        key = FingerprintKey.from_bytes(data, str(path))
        kind, host = "key", None
        try:
            bundle = ClaimBundle.from_bytes(data, str(path), key=key)
            kind, host = "claim", bundle.host
        except FreqprintError as e:
            if "not a freqprint claim bundle" not in str(e):
                raise
            bundle = None
        label = name or path.stem
        if secret and bundle is not None:
            from freqprint.verification.claim import check_claim

            rep = check_claim(bundle, secret)
            if not rep.genuine:
                raise FreqprintError(f"{label}: the claim does not check with this secret ({rep.reason})")
        return self.add_key(key, data, label, kind=kind, always_test=always_test, secret=secret, host=host, allow_bare=allow_bare)

    def add_key(
        self,
        key: FingerprintKey,
        data: bytes | bytearray,
        name: str,
        kind: str = "key",
        always_test: bool = False,
        commit: bool = True,
        secret: str | None = None,
        host: str | None = None,
        allow_bare: bool = False,
    ) -> Entry:
        """Register a key already loaded (``data``: its file's bytes, stored as they are).  With
        ``secret`` (and the module's ``host`` when it is not the key layer's prefix) the key is
        checked against its W₀ (:meth:`add`), and that W₀ is stored beside the file's bytes: the
        key the registry matches with is the file's key anchored at it, whatever anchor the file
        holds.  ``commit=False`` leaves the transaction open for bulk loads (call :meth:`commit`)."""
        if key.weights is None:
            raise FreqprintError(f"{name}: the key holds no kernels")
        if len(data) > MAX_KEY_BYTES:
            raise FreqprintError(f"{name} is larger than a key can be")
        if secret:
            from freqprint.verification.claim import anchor_key

            try:
                stored = anchor_key(key, secret, host)
            except FreqprintError as e:
                raise FreqprintError(f"{name}: {e}") from None
            anchor, trust = stored.decision_kernels().float().contiguous().numpy().astype("<f4").tobytes(), VERIFIED
        elif allow_bare:
            stored, trust, anchor = key, BARE, None
        else:
            raise FreqprintError(
                f"{name}: a key given without its owner's secret cannot show that it comes from a fingerprint module "
                "(a key extracted from an innocent model would match that model); give the secret (--secret-file), "
                "or register it unverified with --allow-bare (marked bare in every match)"
            )
        b = basis_of(stored)
        exact = channel_sketch(stored.decision_kernels(), b)
        sketch = encode_sketch(exact, block_dims(b))
        vector = sketch_vectors(exact, b, key.filters, key.channels).to(torch.float16)
        added = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
        entry = Entry(
            name,
            kind,
            key.commitment,
            key.layer,
            key.filters,
            key.channels,
            key.kernel_size,
            b.name,
            stored.anchored,
            always_test,
            added,
            trust,
        )
        fields = list(astuple(entry))  # the row: the basis as JSON, the flags as integers
        fields[7:10] = [json.dumps(asdict(b)), int(stored.anchored), int(always_test)]
        self._insert(tuple(fields), sketch.numpy().tobytes(), vector.numpy().tobytes(), data, anchor)
        if commit:
            self.db.commit()
        return entry

    def _insert(
        self, fields: tuple, sketch: bytes, vector: bytes, data: bytes | bytearray | None, anchor: bytes | None = None
    ) -> int:
        """One key's rows: its entry (``fields`` in :data:`_COLUMNS` order) with its shortlist
        vector, its sketch, and its body (the key file's bytes and the verified anchor) unless
        ``data`` is None (a body kept elsewhere: :meth:`_body`).  No commit."""
        try:
            kid = self.db.execute(
                f"INSERT INTO keys ({_COLUMNS}, vector) VALUES ({', '.join('?' * 13)})", (*fields, vector)
            ).lastrowid
        except sqlite3.IntegrityError:
            raise FreqprintError(
                f"{fields[0]}: a key named {fields[0]!r} or with commitment {fields[2][:12]}… is already registered"
            ) from None
        assert kid is not None
        self.db.execute("INSERT INTO sketches VALUES (?, ?)", (kid, sketch))
        if data is not None:
            # Python >= 3.11 writes the blob in pieces (sqlite3 Blob I/O): binding it whole makes
            # SQLite copy the key file once more in memory
            blobopen = getattr(self.db, "blobopen", None)
            self.db.execute(
                "INSERT INTO bodies VALUES (?, ?, " + ("zeroblob(?))" if blobopen else "?)"),
                (kid, anchor, len(data) if blobopen else data),
            )
            if blobopen is not None:
                with memoryview(data) as view, blobopen("bodies", "blob", kid) as blob:
                    for i in range(0, len(view), 1 << 20):
                        blob.write(view[i : i + (1 << 20)])
        self._groups = None
        return kid

    def commit(self) -> None:
        self.db.commit()

    def entries(self) -> list[Entry]:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY id").fetchall()
        return [self._entry(r) for r in rows]

    def entry(self, name: str) -> Entry:
        r = self.db.execute(f"SELECT {_COLUMNS} FROM keys WHERE name=? OR commitment=?", (name, name)).fetchone()
        if r is None:
            raise FreqprintError(f"{self.path}: no key named {name!r}")
        return self._entry(r)

    @staticmethod
    def _entry(r: tuple) -> Entry:
        b = basis_from_json(r[7])
        return Entry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], b.name, bool(r[8]), bool(r[9]), r[10], r[11])

    def remove(self, name: str) -> Entry:
        e = self.entry(name)
        with self.db:
            (kid,) = self.db.execute("SELECT id FROM keys WHERE name=?", (e.name,)).fetchone()
            for table in ("keys", "sketches", "bodies"):
                self.db.execute(f"DELETE FROM {table} WHERE id=?", (kid,))
        self._keys.pop(kid, None)
        self._groups = None
        return e

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM keys").fetchone()[0])

    def add_parent(self, source: Any, name: str | None = None, units: int = PARENT_UNITS) -> ParentEntry:
        """Register a released decoder (file, folder, model or state dict) as a parent: its sketch
        (:func:`~freqprint.verification.parent.sketch_parent`, ``units`` MLP units per block and
        :data:`PARENT_TOKENS` token embeddings, float16) is stored, the file is not.  A parent
        entry is evidence of lineage to *those weights* (named by their SHA-256), not of who
        owns them."""
        from freqprint.scan.bulk import content_hash
        from freqprint.verification.parent import sketch_parent

        sk = sketch_parent(source, units=units, embed_rows=PARENT_TOKENS)
        path = Path(source) if isinstance(source, (str, Path)) else None
        digest = content_hash(path) if path is not None else ""
        name = name or (path.stem if path is not None else sk.name)
        blob = sk.to_bytes()
        added = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        try:
            with self.db:
                self.db.execute(
                    "INSERT INTO parents (name, digest, width, blocks, added, sketch) VALUES (?, ?, ?, ?, ?, ?)",
                    (name, digest, sk.width, len(sk.picks), added, blob),
                )
        except sqlite3.IntegrityError:
            raise FreqprintError(f"{self.path}: a parent named {name!r} is already registered") from None
        self._parent_sketches = None
        return ParentEntry(name, digest, sk.width, len(sk.picks), added, len(blob))

    def parent_entries(self) -> list[ParentEntry]:
        rows = self.db.execute("SELECT name, digest, width, blocks, added, length(sketch) FROM parents ORDER BY id").fetchall()
        return [ParentEntry(*r) for r in rows]

    def remove_parent(self, name: str) -> ParentEntry:
        e = next((p for p in self.parent_entries() if p.name == name), None)
        if e is None:
            raise FreqprintError(f"{self.path}: no parent named {name!r}")
        with self.db:
            self.db.execute("DELETE FROM parents WHERE name=?", (name,))
        self._parent_sketches = None
        return e

    def _match_parents(self, store: TensorStore, alpha: float) -> list[ParentMatch]:
        """Every registered parent against a suspect that reads as a decoder (none otherwise)."""
        from freqprint.errors import NoMaterial
        from freqprint.verification.parent import ParentSketch, parent_lineage, read_decoder

        if self._parent_sketches is None:
            rows = self.db.execute("SELECT name, digest, sketch FROM parents ORDER BY id").fetchall()
            self._parent_sketches = [(n, d, ParentSketch.from_bytes(b)) for n, d, b in rows]
        if not self._parent_sketches:
            return []
        try:
            read_decoder(store)
        except NoMaterial:
            return []
        out = []
        count = math.log10(len(self._parent_sketches))
        for name, digest, sk in self._parent_sketches:
            rep = parent_lineage(sk, store, alpha=alpha)
            log10_reg = min(0.0, rep.log10_p + count)
            exact = log10_reg <= math.log10(alpha)
            found = exact or (rep.found and rep.basis == "matched units")
            basis = "unit order" if exact else "matched units" if found else ""
            out.append(ParentMatch(name, digest, found, basis, rep.log10_p, log10_reg, rep.matched))
        return out

    def key(self, key_id: int) -> FingerprintKey:
        if key_id not in self._keys:
            data, anchor = self._body(key_id)
            key = FingerprintKey.from_bytes(data, f"{self.path}#{key_id}")
            if anchor is not None:  # the W₀ the registry regenerated from the secret (a verified key)
                w0 = torch.frombuffer(bytearray(anchor), dtype=torch.float32)
                key.anchor = w0.reshape(key.filters, key.channels, key.kernel_size, key.kernel_size)
            self._keys[key_id] = key
            if len(self._keys) > 256:  # bounded: keys are loaded only for candidates
                self._keys.pop(next(iter(self._keys)))
        return self._keys[key_id]

    def _body(self, key_id: int) -> tuple[bytes, bytes | None]:
        """``(key file bytes, verified anchor or None)`` of a key: fetched only for a key that
        gets the full test."""
        row = self.db.execute("SELECT blob, anchor FROM bodies WHERE id=?", (key_id,)).fetchone()
        if row is None:
            raise FreqprintError(f"{self.path}: key #{key_id} has no stored body (a damaged registry)")
        return row[0], row[1]

    # -----------------------------------------------------------------------------------------
    # matching

    def groups(self) -> dict[tuple[str, int, int], _Group]:
        """Keys grouped by shape (basis, D, C), loaded once per registry object (until an add or
        remove): their ids, layers and shortlist vectors (per block ``[N, p]`` float32,
        :data:`~freqprint.scan.sketch.VECTOR_DIMS`); the channel sketches are read when scored
        (:meth:`_sketches`).  Keys registered ``always_test`` are kept apart (``_always``)."""
        if self._groups is None:
            acc: dict[tuple[str, int, int], tuple[Basis, list[int], list[bytes], set[str]]] = {}
            bases: dict[str, Basis] = {}  # a registry has a few bases and up to millions of rows
            self._always = []
            for kid, basis, d, c, layer, always, vec in self.db.execute(
                "SELECT id, basis, filters, channels, layer, always_test, vector FROM keys ORDER BY id"
            ):
                if always:
                    self._always.append(kid)
                    continue
                if not isinstance(vec, bytes) or len(vec) != 2 * sum(VECTOR_DIMS):
                    raise FreqprintError(
                        f"{self.path}: key #{kid}'s shortlist vector is not {sum(VECTOR_DIMS)} float16 numbers (a damaged registry)"
                    )
                b = bases.get(basis) or bases.setdefault(basis, basis_from_json(basis))
                g = acc.setdefault((b.name, d, c), (b, [], [], set()))
                g[1].append(kid)
                g[2].append(vec)
                g[3].add(layer)
            self._groups = {}
            for gk, (b, ids, vecs, layers) in acc.items():
                arr = np.frombuffer(b"".join(vecs), dtype=np.float16).reshape(len(ids), -1)
                cuts = np.cumsum((0, *VECTOR_DIMS))  # per block, a contiguous float32 copy (sketch.vector_blocks)
                blocks = tuple(torch.from_numpy(arr[:, lo:hi].astype(np.float32)) for lo, hi in zip(cuts[:-1], cuts[1:]))
                self._groups[gk] = _Group(b, gk[1], gk[2], ids, blocks, layers)
        return self._groups

    def _sketches(self, g: _Group, rows: list[int]) -> torch.Tensor:
        """The channel sketches ``[len(rows), C, dims]`` (float32, decoded) of a group's keys at ``rows``: a
        small group's are read once and kept, a large group's read for each shortlist."""
        if len(g.ids) <= SHORTLIST:  # rows: the whole group
            if g.sketches is None:
                g.sketches = self._read_sketches(g, g.ids)
            return g.sketches
        return self._read_sketches(g, [g.ids[r] for r in rows])

    def _read_sketches(self, g: _Group, ids: list[int]) -> torch.Tensor:
        got: dict[int, bytes] = {}
        for lo in range(0, len(ids), 500):
            part = ids[lo : lo + 500]
            got.update(self.db.execute(f"SELECT id, sketch FROM sketches WHERE id IN ({', '.join('?' * len(part))})", part))
        return self._decoded([got.get(i) for i in ids], ids, g.basis, g.channels)

    def _decoded(self, blobs: list[Any], ids: list[int], b: Basis, channels: int) -> torch.Tensor:
        """Stored sketches ``[len(blobs), C, dims]`` (float32), each of the size its shape gives, or
        a one-line error naming a damaged row."""
        size = sketch_bytes(b, channels)
        if not blobs:
            return torch.zeros(0, channels, sum(block_dims(b)))
        bad = next((i for i, x in zip(ids, blobs) if not isinstance(x, bytes) or len(x) != size), None)
        if bad is not None:
            raise FreqprintError(f"{self.path}: key #{bad}'s sketch is missing or not {size} bytes (a damaged registry)")
        raw = torch.frombuffer(bytearray(b"".join(blobs)), dtype=torch.uint8).reshape(len(blobs), size)
        return decode_sketch(raw, channels, block_dims(b))

    def screen(self, store: TensorStore, probe: int = PROBE_CHANNELS, seed: int | None = None) -> Screened:
        """The keys whose screen z-score passes against any of the suspect's readings
        (:class:`Screened`).  A reading of C′ input channels is first probed on
        ``n = probe_count(C′, C, probe)`` of them (:func:`~freqprint.scan.sketch.probe_count`: at
        least ``probe``) where C′ > 2·n, drawn by a generator seeded with ``seed`` (None: a fresh seed), and
        sketched whole only where some key reaches :data:`~freqprint.scan.sketch.Z_PROBE` on the
        probe (``probe=0``: every reading is sketched whole).  In a shape group of more than
        :data:`~freqprint.scan.sketch.SHORTLIST` keys, only its shortlist gets the channel score
        (:mod:`freqprint.scan.sketch`)."""
        passed: dict[int, float] = {}
        scored = shortlisted = probed_n = sketched = 0
        loaded: dict[str, torch.Tensor] = {}

        def is_finite(name: str) -> bool:  # one pass over a tensor, once per store (TensorStore.finite)
            return store.finite(name, loaded[name])

        gen = torch.Generator().manual_seed(secrets.randbits(63) if seed is None else seed)
        if self.groups():
            # the verifier's own merged-channel views: a layer stored twice with its readers split
            # [W+N, −N] (a widening that leaves the function unchanged) reads as the module only there
            store.add_channel_merges()
        for (_, d, c), g in self.groups().items():
            b, ids = g.basis, g.ids
            scored += len(ids)
            k = b.kernel_size
            whole: list[tuple[str, torch.Tensor]] = []  # readings sketched whole: (tensor, reading)
            probed: list[tuple[str, torch.Tensor, torch.Tensor]] = []  # readings probed first: (tensor, reading, probe)
            for name, (shape, floating) in store.shapes.items():
                if not floating or math.prod(shape) < k * k * max(1, c // 2):
                    continue
                for layout, wshape in reading_shapes(shape, c, k, dihedral=False):
                    if wshape[1] * 2 < c or wshape[0] < 2:
                        continue
                    if name not in loaded:
                        if store.refused(name):  # a space-to-depth view of a tensor that holds no re-indexed kernel
                            break
                        loaded[name] = store.get(name)
                    if name in g.layers and not is_finite(name):
                        # as verify: NaN where a key points is an error, elsewhere skipped
                        raise FreqprintError(
                            f"{store.name}: tensor {name!r}, where a registered key points, contains NaN or Inf values"
                        )
                    w = dict(readings(loaded[name], c, k, dihedral=False))[layout]
                    count = probe_count(wshape[1], c, probe)
                    if probe and wshape[1] > 2 * count:
                        probed.append((name, w, w[:, probe_channels(wshape[1], gen, count)]))
                    else:
                        whole.append((name, w))
            whole += [(name, w) for (name, w, _), ok in zip(probed, self._probe(g, [p for *_, p in probed])) if ok]
            suspects = [suspect_sketch(w, b) for name, w in whole if is_finite(name)]
            probed_n += len(probed)
            sketched += len(suspects)
            if not suspects:
                continue
            if len(ids) > SHORTLIST:
                queries = torch.cat([sketch_vectors(sus, b, d, c) for sus in suspects])
                rows = shortlist(shortlist_scores(g.vectors, decoy_vectors(b, d, c), queries), SHORTLIST)
            else:
                rows = list(range(len(ids)))
            shortlisted += len(rows)
            sketches = self._sketches(g, rows)
            best = torch.full((len(rows),), -math.inf)
            for sus in suspects:
                z = score(sketches, decoy_sketches(b, d, c), sus, block_dims(b))
                best = torch.fmax(best, z)  # a NaN score (a degenerate reading) never hides another's
            for r, z in zip(rows, best.tolist()):
                if z >= Z_PASS:
                    passed[ids[r]] = z
        return Screened(passed, scored, shortlisted, probed_n, sketched)

    def _probe(self, g: _Group, parts: list[torch.Tensor]) -> list[bool]:
        """For each probe ``[D′, P, K, K]`` (a few channels of a reading), whether some key of
        group ``g`` reaches :data:`~freqprint.scan.sketch.Z_PROBE` on it.  Probes of the same
        shape are sketched in one batch, and those of the same size scored in one product; in a group of more than
        :data:`~freqprint.scan.sketch.SHORTLIST` keys, each probe against its own shortlist (by
        the probe's vectors).  A probe holding NaN or Inf passes nothing."""
        b, d, c = g.basis, g.filters, g.channels
        ok = [all_finite(p) for p in parts]
        by_rows: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(parts):
            if ok[i]:
                by_rows.setdefault(tuple(p.shape), []).append(i)
        sus: dict[int, torch.Tensor] = {}
        for idx in by_rows.values():
            for i, sk in zip(idx, suspect_sketch(torch.stack([parts[i] for i in idx]), b)):
                sus[i] = sk
        out = [False] * len(parts)
        if not sus:
            return out
        if len(g.ids) > SHORTLIST:
            for i, sk in sus.items():
                rows = shortlist(shortlist_scores(g.vectors, decoy_vectors(b, d, c), sketch_vectors(sk, b, d, c)), SHORTLIST)
                z = score(self._sketches(g, rows), decoy_sketches(b, d, c), sk, block_dims(b), probe=True)
                out[i] = bool((z >= Z_PROBE).any())
            return out
        keys = self._sketches(g, list(range(len(g.ids))))
        by_size: dict[int, list[int]] = {}  # probes of one size (probe_count) in one product
        for i, sk in sus.items():
            by_size.setdefault(sk.shape[-2], []).append(i)
        for order in by_size.values():
            z = score(keys, decoy_sketches(b, d, c), torch.stack([sus[i] for i in order]), block_dims(b), probe=True)
            for i, passed in zip(order, (z >= Z_PROBE).any(0).tolist()):
                out[i] = passed
        return out

    def match(
        self,
        suspect: Any,
        alpha: float = 1e-6,
        screen: bool = True,
        probe: int = PROBE_CHANNELS,
        seed: int | None = None,
    ) -> MatchResult:
        """Every registered key a suspect (file, folder, model or state dict) carries: screen, then
        the full test on the candidates (module docstring).  ``probe`` and ``seed``: the screen's
        probe (:meth:`screen`; ``seed=None`` draws a fresh one, reported as ``probe_seed``).  A
        suspect with nothing a key could match gives an empty result; an unreadable one raises
        :class:`FreqprintError`."""
        t0 = time.perf_counter()
        seed = secrets.randbits(63) if seed is None else seed
        store = open_tensors(suspect)
        groups = self.groups()  # one pass over the index, kept: a million rows are not read per suspect
        always = self._always
        n_keys = len(always) + sum(len(g.ids) for g in groups.values())
        passed: dict[int, float | None]
        if screen:
            sc = self.screen(store, probe, seed)
            passed = dict(sc.passed.items())
        else:
            passed = {kid: None for g in groups.values() for kid in g.ids}
            sc = Screened({}, 0, 0, 0, 0)
        todo: dict[int, float | None] = {**passed, **{k: None for k in always}}
        matches = []
        for kid in sorted(todo, key=lambda i: -(todo[i] or math.inf)):
            key = self.key(kid)
            name, commitment, trust = self.db.execute("SELECT name, commitment, trust FROM keys WHERE id=?", (kid,)).fetchone()
            rep = verify(key, store, alpha=alpha, describe=False)  # a match needs the verdict, not the τ-score
            if rep.layers_searched == 0:  # nothing in the file reads as this key's module
                continue
            log10_reg = min(0.0, rep.log10_p + math.log10(max(1, n_keys)))
            matches.append(
                Match(
                    name,
                    commitment,
                    log10_reg < math.log10(alpha),
                    rep.log10_p,
                    log10_reg,
                    rep.layer,
                    rep.layout,
                    rep.hits,
                    rep.filters,
                    todo[kid],
                    trust,
                )
            )
        matches.sort(key=lambda m: m.log10_p)
        parents = self._match_parents(store, alpha)
        return MatchResult(
            store.name,
            matches,
            n_keys,
            sc.scored,
            len(todo),
            time.perf_counter() - t0,
            shortlisted=sc.shortlisted,
            probe_seed=seed if screen and probe else None,
            probed=sc.probed,
            sketched=sc.sketched,
            parents=parents,
        )
