"""The registry, its screen and bulk scans: what a model hub would run over its uploads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cli_helpers import run
from freqprint.attacks import Compose, create_attack, relayout_state_dict
from freqprint.attacks.equivariance import BlockPermutation
from freqprint.errors import FreqprintError, NotApplicable
from freqprint.io.checkpoint import open_tensors
from freqprint.models import create_model
from freqprint.scan import KeyStore
from freqprint.scan.bulk import scan
from freqprint.scan.sketch import Z_PASS
from freqprint.verification.claim import create_claim
from freqprint.verification.key import FingerprintKey, extract
from freqprint.verification.verifier import verify
from freqprint_bench.corpus import DERIVING_ATTACKS, build_corpus, owner_model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    keys, labels = build_corpus(root)  # 3 owners x 40 derived, 50 unrelated, 15 corrupt, 15 hostile
    reg = root / "reg.db"
    with KeyStore(reg) as r:
        for k in keys:
            r.add(k, secret=f"secret-{Path(k).stem}")
    return root, reg, labels


def _check(records, labels):
    assert len(records) == len(labels) >= 200
    for r in records:
        want = labels[r["path"]]
        if want == "error":
            assert r["status"] == "error" and r["error"], r
        else:
            got = [m["key"] for m in r.get("matches", [])]
            assert got == ([want] if want else []), (r["path"], want, got, r.get("error"))


def test_scan_finds_exactly_the_derived_reports_bad_files_and_resumes(corpus, tmp_path):
    root, reg, labels = corpus
    out = tmp_path / "scan.jsonl"
    s = scan([root / "checkpoints"], reg, out, keep_records=True)
    _check(s.records, labels)
    assert s.matched == sum(1 for v in labels.values() if v not in (None, "error"))
    assert not Path("/tmp/freqprint-pwned").exists()  # the pickle's payload never ran
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == len(labels)
    again = scan([root / "checkpoints"], reg, out)
    assert again.skipped == len(labels) and again.done == 0
    # a registry that changed makes the old records stale: everything is scanned again
    with KeyStore(reg) as r:
        e = r.remove("owner2")
    third = scan([root / "checkpoints"], reg, out, keep_records=True)
    assert third.skipped == 0 and third.done == len(labels)
    assert all(m["key"] != "owner2" for rec in third.records for m in rec.get("matches", []))
    with KeyStore(reg) as r:
        r.add(root / "keys" / "owner2.key", secret="secret-owner2")
    assert e.name == "owner2"


def test_scan_through_a_local_ray_cluster(corpus, tmp_path):
    pytest.importorskip("ray")
    root, reg, labels = corpus
    out = tmp_path / "ray.jsonl"
    s = scan([root / "checkpoints"], reg, out, executor="ray", workers=2, keep_records=True)
    _check(s.records, labels)
    again = scan([root / "checkpoints"], reg, out, executor="ray", workers=2)
    assert again.skipped == len(labels) and again.done == 0


def test_the_screen_never_drops_a_key_the_full_test_finds(tmp_path, monkeypatch):
    """Every suspect the attack suite derives (under every stored layout) that the full test
    finds passes the screen, and the shortlist of a registry larger than it; independent models
    do not."""
    import freqprint.scan.store as store_mod
    from freqprint_bench.scale import _synthetic_key

    owner = owner_model("screen-owner", 8, 32)
    key = extract(owner, secret="screen-owner").save(tmp_path / "o.key")
    monkeypatch.setattr(store_mod, "SHORTLIST", 8)  # the top 4 of 201 per block (a million keys: the top 512 per block)
    with KeyStore(tmp_path / "r.db") as reg, KeyStore(tmp_path / "big.db") as big:
        reg.add(key, secret="screen-owner")
        big.add(key, secret="screen-owner")
        for i in range(200):
            k = _synthetic_key(i, 32, 8)
            big.add_key(k, k.to_bytes(), f"reg-{i}", secret=f"reg-{i}", commit=False)
        big.commit()
        assert len(big.groups()) == 1
        found = 0
        for i, spec in enumerate(DERIVING_ATTACKS + ("mix-filters", "redraw-nullspace", "overwrite", "remove-module")):
            try:
                s = Compose([BlockPermutation(seed=i), create_attack(spec)])(owner)
            except NotApplicable:
                continue
            for layout in (None, "flat", "HWIO", "T", "rot90", "fp16"):
                sd = s.state_dict()
                if (
                    layout
                    and any(k.endswith("fingerprint.weight") for k in sd)
                    and spec.split("(")[0] not in ("grid-transpose", "factorize")
                ):
                    sd = relayout_state_dict(sd, layout)
                sd = {k: v.contiguous() for k, v in sd.items()}
                try:
                    full = verify(key, sd).found
                except FreqprintError:
                    full = False
                passed = reg.screen(open_tensors(sd)).passed
                passed_big, _, n, *_ = big.screen(open_tensors(sd))
                if full:
                    found += 1
                    assert passed and min(passed.values()) >= Z_PASS, (spec, layout)
                    assert 1 in passed_big and n <= 8, (spec, layout)  # id 1: the owner's key, the first added
        assert found >= 60
        for j in range(4):
            passed = reg.screen(open_tensors(owner_model(f"stranger-{j}", 8, 32).state_dict())).passed
            assert not passed


def test_a_damaged_index_is_an_error_not_a_crash(tmp_path):
    """A registry whose vector or sketch rows were cut (a damaged file, or someone else's
    writing) is refused with one message, through the library and the command line."""
    import sqlite3

    key = extract(owner_model("dmg", 8, 16), secret="dmg").save(tmp_path / "k.key")
    suspect = tmp_path / "s.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in owner_model("dmg", 8, 16).state_dict().items()}, str(suspect))
    for table, column in (("keys", "vector"), ("sketches", "sketch")):
        db = tmp_path / f"{table}.db"
        with KeyStore(db) as reg:
            reg.add(key, secret="dmg")
        con = sqlite3.connect(db)
        con.execute(f"UPDATE {table} SET {column} = substr({column}, 1, 10)")
        con.commit()
        con.close()
        with KeyStore(db, create=False) as reg, pytest.raises(FreqprintError, match="a damaged registry"):
            reg.match(suspect)


def test_registry_add_list_remove_and_bad_entries(tmp_path):
    owner = owner_model("alice", 8, 16)
    key = extract(owner, secret="alice").save(tmp_path / "alice.key")
    bundle = create_claim(owner_model("bob", 8, 16), "bob").save(tmp_path / "bob.claim")
    with KeyStore(tmp_path / "r.db") as reg:
        reg.add(key, secret="alice")
        e = reg.add(bundle, name="bob", secret="bob")
        assert e.kind == "claim" and e.trust == "verified"
        assert [x.name for x in reg.entries()] == ["alice", "bob"]
        with pytest.raises(FreqprintError, match="already registered"):
            reg.add(key, name="again", secret="alice")
        data = bytearray(key.read_bytes())
        data[-5] ^= 0xFF  # flip a byte of the tensors: the commitment no longer matches
        (tmp_path / "bad.key").write_bytes(bytes(data))
        with pytest.raises(FreqprintError):
            reg.add(tmp_path / "bad.key")
        (tmp_path / "junk.key").write_bytes(b"\x00" * 64)
        with pytest.raises(FreqprintError):
            reg.add(tmp_path / "junk.key")
        reg.remove("bob")
        assert len(reg) == 1
        with pytest.raises(FreqprintError, match="no key named"):
            reg.remove("bob")
        k = reg.key(reg.db.execute("SELECT id FROM keys").fetchone()[0])
        filed = FingerprintKey.load(key)
        assert k.commitment == filed.commitment  # the owner's file as submitted
        assert filed.anchor is not None and torch.equal(k.anchor, filed.anchor)  # and the W₀ the registry regenerated
    with pytest.raises(FreqprintError, match="not a freqprint key"):
        FingerprintKey.from_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}     ", "x")
    (tmp_path / "notdb.db").write_bytes(b"hello, not sqlite" * 100)
    with pytest.raises(FreqprintError, match="not a freqprint registry"):
        KeyStore(tmp_path / "notdb.db")


def test_registry_and_scan_from_the_command_line(tmp_path, monkeypatch, capsys):
    owner = owner_model("carol", 8, 16)
    key = extract(owner, secret="carol").save(tmp_path / "carol.key")
    d = tmp_path / "uploads"
    d.mkdir()
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in Compose([BlockPermutation(seed=3)])(owner).state_dict().items()},
        str(d / "stolen.safetensors"),
    )
    save_file({k: v.contiguous() for k, v in owner_model("dave", 8, 16).state_dict().items()}, str(d / "other.safetensors"))
    (d / "broken.safetensors").write_bytes(b"\x01\x02")
    reg = tmp_path / "r.db"
    rc, out, err = run(["registry", "add", key, "--registry", reg], monkeypatch, capsys)
    assert rc == 2 and err.startswith("error:") and "--allow-bare" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "secret.txt").write_text("carol\n")
    rc, out, err = run(["registry", "add", key, "--registry", reg, "--secret-file", tmp_path / "secret.txt"], monkeypatch, capsys)
    assert rc == 0 and "added carol (key, verified" in out, err
    rc, out, err = run(["registry", "list", "--registry", reg, "--json"], monkeypatch, capsys)
    assert rc == 0 and json.loads(out)[0]["name"] == "carol"
    rc, out, err = run(["scan", d, "--registry", reg, "--out", tmp_path / "s.jsonl"], monkeypatch, capsys)
    assert rc == 0, err
    recs = {Path(r["path"]).name: r for r in map(json.loads, (tmp_path / "s.jsonl").read_text().splitlines())}
    assert recs["stolen.safetensors"]["status"] == "match" and recs["other.safetensors"]["status"] == "none"
    assert recs["broken.safetensors"]["status"] == "error"
    assert "stolen.safetensors" in out and "carol" in out
    rc, out, err = run(["scan", d, "--registry", tmp_path / "missing.db"], monkeypatch, capsys)
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    rc, out, err = run(["registry", "rm", "nobody", "--registry", reg], monkeypatch, capsys)
    assert rc == 2 and err.startswith("error:")
    rc, out, err = run(["scan", d, "--registry", reg, "--executor", "spark"], monkeypatch, capsys)
    assert rc == 2 and "unknown executor" in err


def test_sketches_under_the_symmetries_of_the_square_follow_from_one_pass():
    """On a square grid the screen computes a tensor's moments once and moves them to the other 7
    symmetries by exact linear maps; that must equal sketching each transformed tensor."""
    from freqprint.scan.sketch import Basis, _dihedral_lifts, channel_sketch, suspect_sketch
    from freqprint.stats.align import DIHEDRAL

    torch.manual_seed(0)
    for grid, dc, lifted in (((28, 28), False, True), ((14, 14), True, True), ((28, 20), False, False)):
        b = Basis(grid, 3, 1, dc)
        w = torch.randn(48, 12, 3, 3)
        assert (_dihedral_lifts(b) is not None) == lifted
        ref = torch.stack([channel_sketch(op(w), b) for op in DIHEDRAL.values()])
        torch.testing.assert_close(suspect_sketch(w, b, torch.float64), ref, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(suspect_sketch(w, b), ref.float(), rtol=1e-4, atol=1e-5)  # what a scan computes


def _key_of_kernels(w: torch.Tensor) -> FingerprintKey:
    """A "key" whose module kernels are ``w``: what anyone can build from any conv layer."""
    return extract({"conv2.fingerprint.weight": w.contiguous(), "conv2.fingerprint.grid": torch.tensor([28, 28, 3, 1, 1])})


def test_forged_and_chimera_keys_cannot_make_a_scan_accuse_an_innocent_upload(tmp_path):
    """Registry poisoning (docs/security.md): keys built from innocent models, registered by
    someone who knows the method and holds a secret of their own."""
    from freqprint.fingerprint import initial_weight
    from freqprint.stats.spectral import kernel_basis
    from freqprint.verification.claim import CLAIM_ALPHA, anchor_key
    from freqprint.verification.verifier import VISIBLE_GAIN

    victim = owner_model("victim", 8, 32)  # someone else's fingerprinted model
    plain = create_model("smallcnn", num_classes=10, in_channels=1, width=8).eval()  # no module at all
    uploads = {"victim": victim.state_dict(), "plain": plain.state_dict()}
    w_victim = victim.conv2.fingerprint.weight.detach()
    lifted = _key_of_kernels(w_victim)  # the victim's module, extracted by the forger
    conv = _key_of_kernels(plain.conv2.weight.detach())  # a plain model's conv2 passed off as a module
    assert verify(lifted, uploads["victim"]).found and verify(conv, uploads["plain"]).found  # what a bare key does
    # a chimera: the hidden block of the forger's own W₀, the visible block of the victim's module
    w0 = initial_weight("mallory", "conv2", 32, w_victim.shape[1], 3).double()
    v, gain = kernel_basis((28, 28), 3, 1, include_dc=False)
    vis = gain >= VISIBLE_GAIN
    z = torch.where(vis, w_victim.double().reshape(32, -1, 9) @ v, w0.reshape(32, -1, 9) @ v)
    chimera = _key_of_kernels((z @ v.T).reshape(w0.shape).float())
    assert verify(chimera, uploads["victim"]).found  # matched against its own kernels, it accuses the victim
    bundle = create_claim(None, "mallory", key=chimera)  # and it passes the claim check (by design)
    bundle.save(tmp_path / "chimera.claim")
    with KeyStore(tmp_path / "r.db") as reg:
        for name, k in (("lifted", lifted), ("conv", conv)):
            k.save(tmp_path / f"{name}.key")
            with pytest.raises(FreqprintError, match="without its owner's secret"):
                reg.add(tmp_path / f"{name}.key")
            with pytest.raises(FreqprintError, match="not from this secret's initialisation"):
                reg.add(tmp_path / f"{name}.key", secret="mallory")
        e = reg.add(tmp_path / "chimera.claim", secret="mallory")
        assert e.kind == "claim" and e.trust == "verified" and e.anchored
        with pytest.raises(FreqprintError, match="does not check"):
            reg.add(tmp_path / "chimera.claim", name="again", secret="not-mallory")
        for name, sd in uploads.items():
            res = reg.match(sd, screen=False)  # the full test against every key: no screen to hide behind
            assert not res.found, (name, res.matches)
        # bare keys only on request, and every match says so
        reg.add(tmp_path / "lifted.key", allow_bare=True)
        res = reg.match(uploads["victim"], screen=False)
        assert [(m.key, m.trust) for m in res.found] == [("lifted", "bare")]
        assert {e.name: e.trust for e in reg.entries()} == {"chimera": "verified", "lifted": "bare"}
    # the owner's own anchored key: its file's anchor must be the one its secret gives
    honest = extract(victim, secret="victim")
    assert anchor_key(honest, "victim").commitment == honest.commitment
    with pytest.raises(FreqprintError, match="anchor is not the initialisation"):
        anchor_key(honest, "someone-else")
    with pytest.raises(FreqprintError, match="not from this secret's initialisation"):
        anchor_key(extract(victim), "mallory", alpha=CLAIM_ALPHA)


_OLD_KEYS = """CREATE TABLE keys (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, kind TEXT NOT NULL,
    commitment TEXT UNIQUE NOT NULL, layer TEXT NOT NULL, filters INTEGER NOT NULL, channels INTEGER NOT NULL,
    kernel_size INTEGER NOT NULL, basis TEXT NOT NULL, anchored INTEGER NOT NULL, always_test INTEGER NOT NULL,
    added TEXT NOT NULL{extra}, sketch BLOB NOT NULL, blob BLOB NOT NULL)"""


def _float16(sketch: bytes, basis: str, channels: int) -> bytes:
    """A stored sketch as formats 1–3 stored it (all float16)."""
    from freqprint.scan.sketch import basis_from_json, block_dims, decode_sketch

    raw = torch.frombuffer(bytearray(sketch), dtype=torch.uint8)
    return decode_sketch(raw, channels, block_dims(basis_from_json(basis))).half().numpy().tobytes()


def _old_registry(new: Path, old: Path, version: int) -> None:
    """What 0.13 (format 1: no trust, no anchor), 0.14 (format 2) or 0.15 (format 3: today's
    tables, float16 sketches) wrote for the keys in ``new``; for 1 and 2, one table holding
    entries, sketches and bodies."""
    import shutil
    import sqlite3

    if version == 3:
        shutil.copy(new, old)
        db = sqlite3.connect(old)
        rows = db.execute("SELECT k.id, s.sketch, k.basis, k.channels FROM keys k JOIN sketches s ON s.id = k.id").fetchall()
        db.executemany("UPDATE sketches SET sketch=? WHERE id=?", [(_float16(*r[1:]), r[0]) for r in rows])
        db.execute("UPDATE meta SET v='freqprint-registry/3' WHERE k='format'")
        db.commit()
        db.close()
        return

    cols = "k.id, name, kind, commitment, layer, filters, channels, kernel_size, basis, anchored, always_test, added"
    src = sqlite3.connect(new)
    rows = src.execute(
        f"SELECT {cols}, trust, b.anchor, s.sketch, b.blob FROM keys k JOIN sketches s ON s.id = k.id JOIN bodies b ON b.id = k.id"
    ).fetchall()
    src.close()
    db = sqlite3.connect(old)
    db.execute(_OLD_KEYS.format(extra=", trust TEXT NOT NULL DEFAULT 'bare', anchor BLOB" if version == 2 else ""))
    db.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('format', ?)", (f"freqprint-registry/{version}",))
    for r in rows:
        r = (*r[:14], _float16(r[14], r[8], r[6]), r[15])
        r = r if version == 2 else r[:12] + r[14:]
        db.execute(f"INSERT INTO keys VALUES ({', '.join('?' * len(r))})", r)
    db.commit()
    db.close()


def test_registries_of_the_previous_formats_are_migrated(tmp_path):
    owner = owner_model("old", 8, 16)
    key = extract(owner, secret="old").save(tmp_path / "old.key")
    with KeyStore(tmp_path / "new.db") as reg:
        reg.add(key, secret="old")
        vectors = reg.groups()[next(iter(reg.groups()))].vectors
        sketch = reg.db.execute("SELECT sketch FROM sketches").fetchone()[0]
    stolen = Compose([BlockPermutation(seed=3)])(owner).state_dict()
    for version, trust in ((1, "bare"), (2, "verified"), (3, "verified")):
        _old_registry(tmp_path / "new.db", tmp_path / f"v{version}.db", version)
        with KeyStore(tmp_path / f"v{version}.db", create=False) as reg:
            assert [e.trust for e in reg.entries()] == [trust]  # nothing in a format-1 file was checked against a secret
            assert reg.key(1).anchor is not None  # the registry's W0 (format 2), the file's own anchor (format 1)
            assert reg.db.execute("SELECT v FROM meta WHERE k='format'").fetchone()[0] == "freqprint-registry/4"
            # the sketch re-encoded byte for byte as an add encodes it; the shortlist vectors
            # computed from it (formats 1, 2: an add's come from the unrounded sketch) or kept (3)
            assert reg.db.execute("SELECT sketch FROM sketches").fetchone()[0] == sketch
            for got, want in zip(reg.groups()[next(iter(reg.groups()))].vectors, vectors, strict=True):
                cos = torch.nn.functional.cosine_similarity(got, want).min()
                assert got.equal(want) if version == 3 else cos > 0.999, (version, cos)
            assert [m.key for m in reg.match(stolen).found] == ["old"]
            reg.remove("old")
            left = [reg.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("keys", "sketches", "bodies")]
            assert left == [0, 0, 0]


def _cache_repo(root: Path, repo: str, revisions: dict[str, dict[str, bytes]], ref: str) -> None:
    """A Hugging Face hub cache entry laid out as huggingface_hub writes it: blobs named by their
    SHA-256, snapshots of symlinks into them, ``refs/main``."""
    import hashlib
    import os

    d = root / f"models--{repo.replace('/', '--')}"
    (d / "blobs").mkdir(parents=True, exist_ok=True)
    (d / "refs").mkdir(exist_ok=True)
    (d / "refs" / "main").write_text(ref)
    for commit, files in revisions.items():
        snap = d / "snapshots" / commit
        snap.mkdir(parents=True)
        for name, data in files.items():
            sha = hashlib.sha256(data).hexdigest()
            (d / "blobs" / sha).write_bytes(data)
            os.symlink(os.path.join("..", "..", "blobs", sha), snap / name)


def test_scan_reads_a_hugging_face_cache_once_per_distinct_weights(tmp_path):
    pytest.importorskip("huggingface_hub")
    from safetensors.torch import save

    from freqprint.scan.bulk import find_checkpoints

    owner = owner_model("cached-owner", 8, 32)
    key = extract(owner, secret="cached-owner").save(tmp_path / "o.key")
    stolen = save({k: v.contiguous() for k, v in Compose([BlockPermutation(seed=5)])(owner).state_dict().items()})
    other = save({k: v.contiguous() for k, v in owner_model("cached-other", 8, 32).state_dict().items()})
    config = b'{"model_type": "smallcnn"}'
    cache = tmp_path / "hub"
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    # two revisions of one repo share their weights (a config edit): read once; a third changed them
    _cache_repo(
        cache,
        "thief/model",
        {
            a: {"config.json": config, "model.safetensors": stolen},
            b: {"config.json": config + b" ", "model.safetensors": stolen},
            c: {"config.json": config, "model.safetensors": other},
        },
        ref=b,
    )
    _cache_repo(cache, "mirror/copy", {a: {"config.json": config, "model.safetensors": stolen}}, ref=a)  # same blob
    third = save({k: v.contiguous() for k, v in owner_model("cached-third", 8, 32).state_dict().items()})
    _cache_repo(cache, "someone/bare-file", {a: {"weights.safetensors": third}}, ref=a)  # no config: the file itself
    found = list(find_checkpoints([tmp_path / "hub"]))
    repos = [p.relative_to(cache).parts[0] for p in found]
    # the stolen weights once (in the first repository holding them), thief/model's other revision, the bare file
    assert repos == ["models--mirror--copy", "models--someone--bare-file", "models--thief--model"], found
    assert found[1].name == "weights.safetensors" and found[2].name == c
    with KeyStore(tmp_path / "r.db") as reg:
        reg.add(key, secret="cached-owner")
    s = scan([tmp_path], tmp_path / "r.db", tmp_path / "scan.jsonl", keep_records=True)
    assert s.done == 3, s
    status = {Path(r["path"]).relative_to(cache).parts[0]: r["status"] for r in s.records}
    assert status == {"models--mirror--copy": "match", "models--someone--bare-file": "none", "models--thief--model": "none"}


def test_the_shortlist_vector_ranks_the_key_first_under_the_thiefs_free_rewrites():
    """The vectors a large registry shortlists with (scan.sketch.sketch_vectors) are blind to what
    a thief rewrites for free: filter and channel order, filter scale, the grid's symmetries,
    added channels; they survive noise, and noise on the hidden block alone (free for a thief)
    leaves the visible block's vector ranking the key first."""
    from freqprint.fingerprint import initial_weight
    from freqprint.scan.sketch import (
        Basis,
        _basis,
        channel_sketch,
        decoy_vectors,
        shortlist,
        shortlist_scores,
        sketch_vectors,
        suspect_sketch,
    )
    from freqprint.stats.align import DIHEDRAL

    b, d, c = Basis((28, 28), 3, 1, True), 16, 8
    keys = torch.stack([initial_weight(f"k-{i}", "conv2", d, c, 3) for i in range(300)])
    vectors = sketch_vectors(channel_sketch(keys, b), b, d, c)  # as an add computes them: from the unrounded sketch

    def z_of(w: torch.Tensor) -> torch.Tensor:
        return shortlist_scores(vectors, decoy_vectors(b, d, c), sketch_vectors(suspect_sketch(w, b), b, d, c))

    g = torch.Generator().manual_seed(0)
    for op in DIHEDRAL.values():
        w = op(keys[7])[torch.randperm(d, generator=g)][:, torch.randperm(c, generator=g)]
        w = w * (torch.rand(d, 1, 1, 1, generator=g) + 0.5)
        w = torch.cat([w, w.std() * torch.randn(d, c, 3, 3, generator=g)], 1)  # as many channels again, made up
        w = w + 0.2 * w.std() * torch.randn(w.shape, generator=g)
        z = z_of(w)
        assert int(z[:, 1].argmax()) == 7 and 7 in shortlist(z, 2), op  # the hidden block: the fingerprint
    v, (_, hidden), _ = _basis(b)
    coords = keys[7].double().reshape(d, c, -1) @ v
    coords[..., hidden] += 4 * coords[..., hidden].std() * torch.randn(d, c, len(hidden), generator=g, dtype=torch.float64)
    z = z_of((coords @ v.T).reshape(d, c, 3, 3).float())
    assert int(z[:, 0].argmax()) == 7 and int(z[:, 1].argmax()) != 7  # the visible block's vector catches it
    stranger = initial_weight("stranger", "conv2", d, c, 3)
    assert float(z_of(stranger).max()) < 6


def test_a_registry_larger_than_the_shortlist_still_finds_the_derived(tmp_path, monkeypatch):
    """Past SHORTLIST keys of one shape, only the keys the vectors shortlist get the channel
    score; every owner's derivative is still found, a stranger is not."""
    import freqprint.scan.store as store_mod
    from freqprint_bench.scale import _synthetic_key

    monkeypatch.setattr(store_mod, "SHORTLIST", 4)
    owners = [owner_model(f"big-{i}", 8, 16) for i in range(3)]
    with KeyStore(tmp_path / "r.db") as reg:
        for i, m in enumerate(owners):
            k = extract(m, secret=f"big-{i}")
            reg.add_key(k, k.to_bytes(), f"big-{i}", secret=f"big-{i}")
        for i in range(40):
            k = _synthetic_key(i, 16, 8)
            reg.add_key(k, k.to_bytes(), f"reg-{i}", secret=f"reg-{i}", commit=False)
        reg.commit()
        assert len(reg.groups()) == 1  # one shape: 43 keys, more than the shortlist
        for i, m in enumerate(owners):
            res = reg.match(Compose([BlockPermutation(seed=i)])(m).state_dict())
            assert [x.key for x in res.found] == [f"big-{i}"]
            assert res.screened == 43 and 2 <= res.shortlisted <= 4  # the top 2 of each block, united
        res = reg.match(owner_model("big-stranger", 8, 16).state_dict())
        assert not res.found and 2 <= res.shortlisted <= 4


def test_the_screen_reads_a_widened_layer_through_its_merged_view(tmp_path):
    """A thief stores conv1 twice and splits every reader over the copy pair ([W+N, −N]): the
    function is unchanged and verify reads the module through its merged view.  The registry's
    screen must read that view too (before 0.15 it did not, and the upload went unmatched)."""
    owner = owner_model("wide", 8, 16)
    sd = {k: v.clone() for k, v in owner.state_dict().items()}
    wide = dict(sd)
    for k in ("conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"):
        wide[k] = torch.cat([sd[k], sd[k]])
    g = torch.Generator().manual_seed(0)
    for k in ("conv2.base.weight", "conv2.fingerprint.weight"):
        n = torch.randn(sd[k].shape, generator=g) * 3 * sd[k].norm() / sd[k].numel() ** 0.5
        wide[k] = torch.cat([sd[k] + n, -n], 1)
    key = extract(owner, secret="wide")
    assert verify(key, wide).found
    with KeyStore(tmp_path / "r.db") as reg:
        reg.add_key(key, key.to_bytes(), "wide", secret="wide")
        assert [m.key for m in reg.match(wide).found] == ["wide"]


def test_stored_sketches_keep_the_visible_block_in_float16_and_round_the_hidden_one_to_int8():
    """Format 4's sketch (scan.sketch.encode_sketch): C·(2·d_v + d_h) bytes, the visible block
    as float16 exactly, the hidden block within half an int8 step (1/254) of the sketch."""
    from freqprint.fingerprint import initial_weight
    from freqprint.scan.sketch import Basis, block_dims, channel_sketch, decode_sketch, encode_sketch, sketch_bytes

    b, c = Basis((28, 28), 3, 1, True), 16
    s = channel_sketch(torch.stack([initial_weight(f"k-{i}", "conv2", 32, c, 3) for i in range(3)]), b)
    dv, dh = block_dims(b)
    raw = encode_sketch(s, (dv, dh))
    assert raw.dtype == torch.uint8 and raw.shape == (3, sketch_bytes(b, c)) == (3, c * (2 * dv + dh))
    back = decode_sketch(raw, c, (dv, dh))
    assert back[..., :dv].equal(s[..., :dv].half().float())
    assert (back[..., dv:] - s[..., dv:]).abs().max() <= 0.5 / 127 + 1e-6
    assert not torch.equal(back[..., dv:], s[..., dv:].float())  # it is rounded: the bytes are not a float copy


def test_the_probe_reads_a_few_channels_of_a_wide_reading_and_still_finds_the_derived(tmp_path):
    """Readings of more than 2·PROBE_CHANNELS channels are first probed on a few random channels:
    a derivative (permuted, rewritten, the module widened through a producer copy) is still found
    under every probe seed tried, an unrelated model's wide readings are stopped at the probe, a
    seed reproduces its draw, and ``probe=0`` sketches every reading whole."""
    from freqprint_bench.rewrites import REWRITES

    owner = owner_model("probe-owner", 64, 64)  # the module: 64 filters on 64 channels
    key = extract(owner, secret="probe-owner")
    derived = {k: v.contiguous() for k, v in Compose([BlockPermutation(seed=1)])(owner).state_dict().items()}
    suspects = {name: REWRITES[name](derived, torch.Generator().manual_seed(0)) for name in REWRITES}
    suspects["permuted"] = derived
    with KeyStore(tmp_path / "r.db") as reg:
        reg.add_key(key, key.to_bytes(), "owner", secret="probe-owner")
        for name, sd in suspects.items():
            for seed in range(3):
                res = reg.match(sd, seed=seed)
                assert [m.key for m in res.found] == ["owner"], (name, seed)
                assert res.probed >= 1 and res.probe_seed == seed, name
        stranger = owner_model("probe-stranger", 64, 64).state_dict()
        for seed in range(3):
            res = reg.match(stranger, seed=seed)
            assert not res.found and res.tested == 0
            assert res.probed >= 2 and res.sketched < res.probed  # its wide readings stop at the probe
        again = reg.match(stranger, seed=2)
        assert (again.probed, again.sketched) == (res.probed, res.sketched)
        drawn = reg.match(stranger)
        assert drawn.probe_seed is not None  # a fresh seed, reported
        whole = reg.match(stranger, probe=0)
        assert whole.probed == 0 and whole.sketched >= res.probed and whole.probe_seed is None
        assert [m.key for m in reg.match(derived, probe=0).found] == ["owner"]


def test_the_probe_grows_with_padding_so_a_padded_module_still_shows(tmp_path, monkeypatch):
    """A thief pads the module's input with junk channels (16 real among 256: ×16) so that a
    probe of 16 channels draws one real channel on average and misses.  The probe's size grows
    with the reading's width against the key's (probe_count: 4 real channels on average
    whatever the padding), so the padded derivative passes under most probe seeds; with the
    fixed 16-channel probe of 0.17–0.26 it did not.  An unrelated model padded alike passes none."""
    import freqprint.scan.store as store_module
    from freqprint.scan.sketch import PROBE_REAL, probe_count
    from freqprint_bench.probe import _padded

    assert probe_count(256, 16) == 64 and probe_count(64, 64) == 16
    assert all(probe_count(16 * f, 16) * 16 / (16 * f) >= PROBE_REAL for f in (4, 8, 16, 64, 1024))  # any padding
    owner = owner_model("pad-owner", 16, 64)  # the module: 64 filters on 16 channels
    key = extract(owner, secret="pad-owner")
    module = "conv2.fingerprint.weight"
    derived = Compose([BlockPermutation(seed=1)])(owner).state_dict()
    padded = _padded({k: v.contiguous() for k, v in derived.items()}, 240, torch.Generator().manual_seed(0), module)
    stranger = owner_model("pad-stranger", 16, 64).state_dict()
    stranger = _padded({k: v.contiguous() for k, v in stranger.items()}, 240, torch.Generator().manual_seed(1), module)
    with KeyStore(tmp_path / "r.db") as reg:
        reg.add_key(key, key.to_bytes(), "owner", secret="pad-owner")
        (owner_id,) = next(iter(reg.groups().values())).ids
        assert [m.key for m in reg.match(padded, probe=0).found] == ["owner"]  # no probe: found

        def passes(sd) -> int:
            return sum(owner_id in reg.screen(open_tensors(sd), seed=s).passed for s in range(10))

        assert passes(padded) >= 8
        assert passes(stranger) == 0
        monkeypatch.setattr(store_module, "probe_count", lambda channels, key_channels, probe=16: probe)
        assert passes(padded) <= 5  # the fixed probe: about one real channel per draw


def test_probe_scores_of_a_batch_of_readings_equal_those_of_each_reading():
    """:func:`score` on a batch ``[R, 8, C′, dims]`` standardises each reading by the decoys' scores
    on it: the same z as each reading scored alone (the two decoy steps included)."""
    from freqprint.scan.sketch import Basis, block_dims, channel_sketch, decoy_sketches, score, suspect_sketch

    b = Basis((28, 28), 3, 1, False)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(32, 64, 3, 3, generator=g, dtype=torch.float64)
    keys = torch.stack(
        [channel_sketch(w, b), channel_sketch(torch.randn(32, 64, 3, 3, generator=g, dtype=torch.float64), b)]
    ).float()
    parts = [w[:, :16] + 0.2 * torch.randn(32, 16, 3, 3, generator=g, dtype=torch.float64)]
    parts += [torch.randn(32, 16, 3, 3, generator=g, dtype=torch.float64) for _ in range(3)]
    batch = suspect_sketch(torch.stack(parts), b)
    assert batch.shape == (4, 8, 16, sum(block_dims(b)))
    decoys = decoy_sketches(b, 32, 64)
    z = score(keys, decoys, batch, block_dims(b), probe=True)
    alone = torch.stack([score(keys, decoys, suspect_sketch(p, b), block_dims(b), probe=True) for p in parts], 1)
    assert torch.allclose(z, alone, atol=1e-4)
    assert z[0, 0] > 6 and z[1, 0] < 4  # the owner's channels among the probe's; the other key's not
