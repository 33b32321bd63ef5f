"""Every failure is a clean refusal or a visible bug: exit 2 with one ``error:`` line for input that
cannot be used, exit 3 with one ``bug:`` line for anything unexpected, and memory bounded by what a
command has to read (measured in a fresh process: its own peak resident size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from cli_helpers import run, run_measured, sparse_safetensors
from conftest import small_owner
from freqprint import FingerprintConfig, create_model, extract, save_model
from freqprint.errors import EXIT_BUG, EXIT_REFUSED, FreqprintError, InvalidArgument, UnreadableFile


def _one_error_line(rc: int, err: str, code: int = EXIT_REFUSED, prefix: str = "error: ") -> bool:
    return rc == code and err.startswith(prefix) and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def owner(tmp_path_factory):
    d = tmp_path_factory.mktemp("refusals")
    model, recipe = small_owner("alice")
    save_model(model, d / "owner.safetensors", recipe)
    extract(model).save(d / "owner.key")
    (d / "secret.txt").write_text("alice\n")
    return {
        "dir": d,
        "model": model,
        "file": d / "owner.safetensors",
        "key": d / "owner.key",
        "secret": d / "secret.txt",
        "sd": {k: v.clone() for k, v in model.state_dict().items()},
    }


# --- the exception classes ------------------------------------------------------------------------


def test_errors_also_inherit_the_builtins():
    assert issubclass(InvalidArgument, ValueError) and issubclass(InvalidArgument, FreqprintError)
    assert issubclass(UnreadableFile, OSError) and issubclass(UnreadableFile, FreqprintError)
    with pytest.raises(ValueError, match="tau"):
        extract(create_model("smallcnn"), tau=float("nan"))
    with pytest.raises(OSError, match="(?i)no such"):
        from freqprint import verify

        verify("no-such.key", "no-such.safetensors")
    from freqprint import load_state_dict
    from freqprint.attacks import create_attack
    from freqprint.executor import create_executor

    for bad_call in (
        lambda: create_model("resnet9000"),
        lambda: create_attack("explode(x=1)"),
        lambda: create_executor("cloud", 1, None),
        lambda: FingerprintConfig(target="c", secret="s", merge="gelu"),
    ):
        with pytest.raises(ValueError):
            bad_call()
    with pytest.raises(OSError):
        load_state_dict("no-such.safetensors")


# --- secrets --------------------------------------------------------------------------------------


def test_a_secret_file_is_read_bounded_and_only_if_regular(owner, tmp_path, monkeypatch, capsys):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * (1 << 20))
    (tmp_path / "empty.txt").write_text("  \n")
    for bad, why in (
        ("/dev/zero", "not a regular file"),
        (tmp_path, "a directory"),
        (big, "more than"),
        (tmp_path / "empty.txt", "empty"),
        (tmp_path / "missing.txt", "No such file"),
    ):
        for args in (
            ["extract", owner["file"], "--out", tmp_path / "k.key", "--secret-file", bad],
            ["claim", "create", owner["file"], "--out", tmp_path / "c.claim", "--secret-file", bad],
            ["trace", owner["file"], owner["file"], "--secret-file", bad],
        ):
            rc, out, err = run(args, monkeypatch, capsys)
            assert _one_error_line(rc, err) and why in err, (args, err)
    rc, out, err = run(
        ["extract", owner["file"], "--out", tmp_path / "k.key", "--secret-file", owner["secret"]], monkeypatch, capsys
    )
    assert rc == 0 and (tmp_path / "k.key").is_file(), err


def test_a_fifo_as_secret_file_is_refused_without_blocking(owner, tmp_path):
    fifo = tmp_path / "secret.fifo"
    os.mkfifo(fifo)  # nobody ever writes to it: an open() that waits for a writer would hang for ever
    rc, out, err, _ = run_measured(
        ["extract", owner["file"], "--out", tmp_path / "k.key", "--secret-file", fifo], tmp_path, timeout=120
    )
    assert _one_error_line(rc, err) and "not a regular file" in err, err


# --- memory bounded by what is read ---------------------------------------------------------------


def test_extract_reads_only_the_module_whatever_else_the_file_holds(owner, tmp_path):
    sd = {k: v for k, v in owner["sd"].items() if k.startswith("conv2.fingerprint")}
    sparse_safetensors(tmp_path / "sparse.safetensors", sd, "aaa.zeros", 1 << 30)  # 1 GiB of zeros, legal
    save_file(sd, str(tmp_path / "plain.safetensors"))
    rc0, _, err0, ref = run_measured(["extract", tmp_path / "plain.safetensors", "--out", tmp_path / "a.key"], tmp_path)
    rc, _, err, peak = run_measured(["extract", tmp_path / "sparse.safetensors", "--out", tmp_path / "b.key"], tmp_path)
    assert rc0 == 0 and rc == 0, (err0, err)
    assert peak - ref < 128, (peak, ref)  # the 1 GiB tensor is never read (it cost 3.1 GB before)


def test_a_huge_grid_buffer_costs_what_its_key_costs(owner, tmp_path):
    sd = {k: v.clone() for k, v in owner["sd"].items()}
    sd["conv2.fingerprint.grid"] = torch.tensor([4096, 4096, 3, 1, 1])  # inside MAX_GRID
    save_file(sd, str(tmp_path / "grid.safetensors"))
    rc0, _, err0, ref = run_measured(["extract", owner["file"], "--out", tmp_path / "a.key"], tmp_path)
    rc, out, err, peak = run_measured(["extract", tmp_path / "grid.safetensors", "--out", tmp_path / "b.key"], tmp_path)
    assert rc0 == 0 and rc == 0, (err0, err)
    assert peak - ref < 128, (peak, ref)  # S′ is built from its rows and columns: 16,380 frequencies, an 8 MB key (2.4 GB before)
    # study visits every frequency: a grid this large is refused at once, not computed for minutes in 6.6 GB
    rc, out, err, peak = run_measured(["study", tmp_path / "grid.safetensors", tmp_path / "grid.safetensors"], tmp_path)
    assert _one_error_line(rc, err) and "every frequency" in err and peak - ref < 128, (err, peak)
    # a module whose key could not be stored: refused from the counts alone
    sd["conv2.fingerprint.weight"] = torch.randn(256, 512, 7, 7) * 0.1
    sd["conv2.fingerprint.grid"] = torch.tensor([4096, 4096, 7, 1, 1])
    save_file(sd, str(tmp_path / "wide.safetensors"))
    rc, out, err, peak = run_measured(["extract", tmp_path / "wide.safetensors", "--out", tmp_path / "c.key"], tmp_path)
    assert _one_error_line(rc, err) and "too large for its weight" in err, err


def test_registry_add_reads_a_key_once(tmp_path):
    torch.manual_seed(1)
    sd = {"host.fingerprint.weight": torch.randn(256, 64, 3, 3) * 0.1, "host.fingerprint.grid": torch.tensor([256, 256, 3, 1, 1])}
    key = extract(sd)
    key.save(tmp_path / "big.key")
    size_mb = (tmp_path / "big.key").stat().st_size / 2**20
    assert size_mb > 60, size_mb
    small = extract(
        {"host.fingerprint.weight": torch.randn(16, 8, 3, 3), "host.fingerprint.grid": torch.tensor([28, 28, 3, 1, 1])}
    )
    small.save(tmp_path / "small.key")
    rc0, _, err0, ref = run_measured(
        ["registry", "add", tmp_path / "small.key", "-r", tmp_path / "a.db", "--allow-bare"], tmp_path
    )
    rc, _, err, peak = run_measured(["registry", "add", tmp_path / "big.key", "-r", tmp_path / "b.db", "--allow-bare"], tmp_path)
    assert rc0 == 0 and rc == 0, (err0, err)
    assert peak - ref < 3.5 * size_mb, (peak, ref, size_mb)  # the bytes, the spectra, small change (4.9x before)


# --- study validates what it reads as verify does -------------------------------------------------


def test_study_refuses_weights_and_grids_it_cannot_read(owner, tmp_path, monkeypatch, capsys):
    w = owner["sd"]["conv2.fingerprint.weight"]
    cases = {
        "complex": {"conv2.fingerprint.weight": torch.complex(w, w)},
        "fractional grid": {"conv2.fingerprint.grid": torch.tensor([28.5, 28.0, 3.0, 1.0, 1.0])},
        "grid of 7": {"conv2.fingerprint.grid": torch.arange(7)},
    }
    for name, change in cases.items():
        sd = {**owner["sd"], **change}
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "x.safetensors"))
        expect = {"fractional grid": "does not hold integers", "grid of 7": "not [4] or [5]"}.get(name, "read from float16")
        runs = [
            ["study", tmp_path / "x.safetensors", owner["file"]],
            ["extract", tmp_path / "x.safetensors", "--out", tmp_path / "x.key"],
        ]
        if "grid" not in name:  # the derived model's weight is validated too (its grid is the source's)
            runs.append(["study", owner["file"], tmp_path / "x.safetensors"])
        for args in runs:
            rc, out, err = run(args, monkeypatch, capsys)
            assert _one_error_line(rc, err) and expect in err, (name, args, err)
    # float8 and int8 storage are read as the function reads them (freqprint.io.canonical), not refused
    for stored in (w.to(torch.float8_e4m3fn), (w * 100).round().to(torch.int8)):
        sd = {**owner["sd"], "conv2.fingerprint.weight": stored}
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "q.safetensors"))
        rc, out, err = run(["study", owner["file"], tmp_path / "q.safetensors"], monkeypatch, capsys)
        assert rc == 0 and not err, err
    # a float grid holding integers (a thief who cast every buffer to float) is still a grid
    sd = {**owner["sd"], "conv2.fingerprint.grid": owner["sd"]["conv2.fingerprint.grid"].float()}
    save_file(sd, str(tmp_path / "fgrid.safetensors"))
    rc, out, err = run(["study", owner["file"], tmp_path / "fgrid.safetensors", "--json"], monkeypatch, capsys)
    assert rc == 0 and json.loads(out)[0]["group"] == "sprime", err


# --- exit codes: a bug is not a refusal -----------------------------------------------------------


def test_an_unexpected_exception_is_a_bug_not_a_refusal(owner, monkeypatch, capsys):
    import freqprint.verification.verifier as verify_module

    def broken(*a, **k):
        raise ZeroDivisionError("integer division or modulo by zero")

    monkeypatch.setattr(verify_module, "verify", broken)
    rc, out, err = run(["verify", owner["key"], owner["file"]], monkeypatch, capsys)
    assert _one_error_line(rc, err, EXIT_BUG, "bug: ") and "ZeroDivisionError" in err and "FREQPRINT_DEBUG" in err, err
    monkeypatch.setenv("FREQPRINT_DEBUG", "1")
    rc, out, err = run(["verify", owner["key"], owner["file"]], monkeypatch, capsys)
    assert rc == EXIT_BUG and "Traceback" in err and err.strip().splitlines()[-1].startswith("bug: ZeroDivisionError"), err
    # library ValueErrors that are not the caller's fault are bugs too (they used to pass as exit 2)
    monkeypatch.delenv("FREQPRINT_DEBUG")

    def broken_value(*a, **k):
        raise ValueError("shapes do not broadcast")

    monkeypatch.setattr(verify_module, "verify", broken_value)
    rc, out, err = run(["verify", owner["key"], owner["file"]], monkeypatch, capsys)
    assert rc == EXIT_BUG and err.startswith("bug: ValueError"), err


def test_an_unwritable_output_is_a_refusal(owner, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    rc, out, err = run(["extract", owner["file"], "--out", tmp_path / "file" / "k.key"], monkeypatch, capsys)
    assert _one_error_line(rc, err) and "file" in err, err


# --- scans ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scan_setup(owner, tmp_path_factory):
    from freqprint.scan import KeyStore

    d = tmp_path_factory.mktemp("scan")
    with KeyStore(d / "reg.db") as reg:
        reg.add(owner["key"], secret="alice")
    files = d / "files"
    files.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(12):
        sd = dict(owner["sd"]) if i % 3 == 0 else {"conv.weight": torch.randn(16, 8, 3, 3, generator=g)}
        save_file({k: v.contiguous() for k, v in sd.items()}, str(files / f"m{i:02d}.safetensors"))
    (files / f"m{i:02d}.safetensors").write_bytes(b"not a checkpoint")  # one unreadable: an error record, once
    return d


def test_scan_refuses_bad_options_before_walking(scan_setup, tmp_path, monkeypatch, capsys):
    d = scan_setup
    for opt, why in (
        (["--alpha", "nan"], "alpha"),
        (["--alpha", "0"], "alpha"),
        (["--alpha", "1.5"], "alpha"),
        (["--workers", "0"], "workers"),
        (["--executor", "cloud"], "executor"),
    ):
        rc, out, err = run(["scan", d / "files", "-r", d / "reg.db", "-o", tmp_path / "s.jsonl", *opt], monkeypatch, capsys)
        assert _one_error_line(rc, err) and why in err, (opt, err)
        assert not (tmp_path / "s.jsonl").exists() or not (tmp_path / "s.jsonl").read_text(), opt
    rc, out, err = run(
        ["scan", d / "files", tmp_path / "nowhere", "-r", d / "reg.db", "-o", tmp_path / "s.jsonl"], monkeypatch, capsys
    )
    assert _one_error_line(rc, err) and "nowhere" in err and not (tmp_path / "s.jsonl").exists()


def _records(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_concurrent_scans_on_one_output_never_duplicate_or_lose_a_record(scan_setup, tmp_path):
    d = scan_setup
    out = tmp_path / "s.jsonl"
    cmd = [sys.executable, "-m", "freqprint.cli", "scan", str(d / "files"), "-r", str(d / "reg.db"), "-o", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    recs = _records(out)
    paths = [r["path"] for r in recs]
    assert sorted(paths) == sorted(str(p) for p in (d / "files").iterdir()), paths  # each checkpoint exactly once
    assert sum(r["status"] == "match" for r in recs) == 4 and sum(r["status"] == "error" for r in recs) == 1


def test_a_resumed_scan_skips_unchanged_files_without_reading_them(scan_setup, tmp_path, monkeypatch):
    import freqprint.scan.bulk as scan_mod

    d = scan_setup
    out = tmp_path / "s.jsonl"
    first = scan_mod.scan([d / "files"], d / "reg.db", out)
    assert first.done == 12 and first.skipped == 0

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed although unchanged")

    monkeypatch.setattr(scan_mod, "content_hash", no_hashing)
    again = scan_mod.scan([d / "files"], d / "reg.db", out)
    assert again.skipped == 12 and again.done == 0 and len(_records(out)) == 12
    monkeypatch.undo()
    changed = d / "files" / "m01.safetensors"
    save_file({"conv.weight": torch.ones(16, 8, 3, 3)}, str(changed))  # new content: scanned again
    third = scan_mod.scan([d / "files"], d / "reg.db", out)
    assert third.done == 1 and third.skipped == 11


# --- the sweep: every command that reads a file, against every kind of hostile file ---------------


def _hostile_files(d, owner) -> dict:
    import pickle
    import zipfile

    d.mkdir(exist_ok=True)
    good = owner["file"].read_bytes()
    files = {
        "missing": d / "missing.safetensors",
        "directory": d,
        "dev-zero": "/dev/zero",
    }
    blobs = {
        "empty": b"",
        "random": bytes(range(256)) * 40,
        "truncated": good[: len(good) // 2],
        "header-too-long": (10**12).to_bytes(8, "little") + b"{}",
        "header-not-json": (16).to_bytes(8, "little") + b"{not json at all",
        "header-a-list": (6).to_bytes(8, "little") + b"[1, 2]",
        "bad-offsets": (len(b'{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,9999]}}')).to_bytes(8, "little")
        + b'{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,9999]}}'
        + b"\0" * 64,
        "unknown-dtype": (len(b'{"w":{"dtype":"Q7","shape":[4],"data_offsets":[0,16]}}')).to_bytes(8, "little")
        + b'{"w":{"dtype":"Q7","shape":[4],"data_offsets":[0,16]}}'
        + b"\0" * 16,
        "pickle": pickle.dumps({"conv.weight": [1.0, 2.0]}),
        "json": b'{"weight_map": {}}',
    }
    for name, blob in blobs.items():
        files[name] = d / f"{name}.safetensors"
        files[name].write_bytes(blob)
    with zipfile.ZipFile(d / "zip.pt", "w") as z:  # a zip that is no torch checkpoint
        z.writestr("data.txt", "hello")
    files["zip-not-torch"] = d / "zip.pt"
    fifo = d / "fifo.safetensors"
    os.mkfifo(fifo)
    files["fifo"] = fifo
    return files


def test_every_command_refuses_every_hostile_file_with_one_line(owner, tmp_path, monkeypatch, capsys):
    """Exit 2 and one ``error:`` line, never a verdict and never a bug (exit 3), whichever file
    argument is hostile: the checks that used to hide behind a blanket ``ValueError``/``OSError``
    mapping have to stand on their own now."""
    from freqprint.scan import KeyStore

    bad = _hostile_files(tmp_path / "bad", owner)
    with KeyStore(tmp_path / "reg.db") as reg:
        reg.add(owner["key"], secret="alice")
    commands = {
        "verify key": lambda f: ["verify", f, owner["file"]],
        "verify suspect": lambda f: ["verify", owner["key"], f],
        "extract": lambda f: ["extract", f, "--out", tmp_path / "k.key"],
        "study source": lambda f: ["study", f, owner["file"]],
        "study derived": lambda f: ["study", owner["file"], f],
        "trace owner": lambda f: ["trace", f, owner["file"], "--secret", "alice"],
        "trace suspect": lambda f: ["trace", owner["file"], f, "--secret", "alice", "--no-lineage"],
        "claim create": lambda f: ["claim", "create", f, "--secret", "alice", "--out", tmp_path / "c.claim"],
        "claim check": lambda f: ["claim", "check", f, "--secret", "alice"],
        "registry add": lambda f: ["registry", "add", f, "-r", tmp_path / "new.db", "--allow-bare"],
        "registry list": lambda f: ["registry", "list", "-r", f],
        "metav verify claim": lambda f: ["metav", "verify", f, str(owner["file"])],
        "metav manifest": lambda f: ["metav", "build", "--manifest", f, "--dry-run"],
        "attack": lambda f: ["attack", f, "--out", tmp_path / "a.safetensors", "--do", "scale-blocks(seed=1)"],
    }
    allowed_verdicts = {  # a file that is legal input for this slot: a verdict, not a refusal
        ("trace suspect", "directory"),  # a folder is a checkpoint only with one index or one weights file
    }
    failures = []
    for cmd, make in commands.items():
        for kind, path in bad.items():
            rc, out, err = run(make(path), monkeypatch, capsys)
            ok = _one_error_line(rc, err) or ((cmd, kind) in allowed_verdicts and rc in (0, 1))
            if not ok:
                failures.append((cmd, kind, rc, err.strip()[-200:]))
    assert not failures, "\n".join(map(str, failures))
