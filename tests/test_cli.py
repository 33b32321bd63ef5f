"""The command line as a user drives it: embed → extract → finetune → verify, and bad files."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from cli_helpers import run, run_captured


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


COMMON = ["--width", "8", "--filters", "32", "--epochs", "2", "--lr", "0.05", "--batch-size", "64"]


@pytest.fixture(scope="module")
def trained(workdir, fashion_dir, digits_dir):
    """The owner's fingerprinted model and key (``embed``) and a fine-tuned copy (``finetune``),
    made once through the command line for every test of this module."""
    owner, key, ft = workdir / "owner.safetensors", workdir / "owner.key", workdir / "ft.safetensors"
    embed = run_captured(
        [
            "embed",
            "--out",
            owner,
            "--key",
            key,
            "--secret",
            "alice",
            "--data",
            "fashion-mnist",
            "--data-root",
            fashion_dir,
            "--checkpoint-dir",
            workdir / "ckpt",
            *COMMON,
        ]
    )
    finetune = run_captured(
        ["finetune", owner, "--out", ft, "--data", "mnist-digits", "--data-root", digits_dir, "--epochs", "2", "--lr", "0.01"]
    )
    return {"owner": owner, "key": key, "ft": ft, "embed": embed, "finetune": finetune}


def test_embed_finetune_verify_round_trip(workdir, trained, fashion_dir, digits_dir, monkeypatch, capsys):
    owner, key, ft = trained["owner"], trained["key"], trained["ft"]
    rc, out, err = trained["embed"]
    assert rc == 0, err
    assert sorted(p.name for p in (workdir / "ckpt").iterdir()) == ["epoch-1.safetensors", "epoch-2.safetensors"]
    acc = float(out.split("test accuracy ")[1].split(";")[0])
    assert acc > 0.5  # the synthetic task is learnable; chance is 0.1
    rc, out, err = run(["extract", owner, "--out", workdir / "again.key"], monkeypatch, capsys)
    assert rc == 0 and "sha256 commitment" in out
    rc, out, err = trained["finetune"]
    assert rc == 0, err
    rc, out, err = run(["verify", key, ft, "--json"], monkeypatch, capsys)
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["found"] and rep["score"] > 0.95 and rep["log10_p"] < -6
    rc, out, err = run(["verify", key, ft, "--no-describe"], monkeypatch, capsys)  # the verdict alone
    assert rc == 0 and "not computed" in out and "alignment stage" in out
    rc, out, err = run(["verify", key, ft, "--json", "--exhaustive"], monkeypatch, capsys)  # the old search, no early stop
    assert rc == 0 and json.loads(out)["stage"] == "full" and json.loads(out)["found"]

    other = workdir / "other.safetensors"
    monkeypatch.setenv("FREQPRINT_SECRET", "bob")
    rc, out, err = run(
        ["embed", "--out", other, "--data", "fashion-mnist", "--data-root", fashion_dir, "--seed", "1", *COMMON],
        monkeypatch,
        capsys,
    )
    assert rc == 0, err
    rc, out, err = run(["verify", key, other], monkeypatch, capsys)
    assert rc == 1 and "not found" in out

    # an owner who fingerprints an already trained plain model (--from)
    plain, late = workdir / "plain.safetensors", workdir / "late.safetensors"
    assert (
        run(["train", "--out", plain, "--data-root", fashion_dir, "--width", "8", "--epochs", "1"], monkeypatch, capsys)[0] == 0
    )
    rc, out, err = run(
        [
            "embed",
            "--from",
            plain,
            "--out",
            late,
            "--key",
            workdir / "late.key",
            "--data-root",
            fashion_dir,
            "--filters",
            "16",
            "--epochs",
            "1",
            "--lr",
            "0.01",
        ],
        monkeypatch,
        capsys,
    )
    assert rc == 0, err
    assert run(["verify", workdir / "late.key", late], monkeypatch, capsys)[0] == 0
    assert run(["verify", workdir / "late.key", ft], monkeypatch, capsys)[0] == 1

    # a torch checkpoint (zip, loaded weights-only) of the derived model works too
    from freqprint import load_state_dict

    torch.save({"state_dict": load_state_dict(ft)}, workdir / "ft.pt")
    assert run(["verify", key, workdir / "ft.pt"], monkeypatch, capsys)[0] == 0

    # attack chains from the command line: function-preserving ones keep the fingerprint,
    # replacing the module's filters erases it
    stolen = workdir / "stolen.safetensors"
    rc, out, err = run(
        [
            "attack",
            owner,
            "--out",
            stolen,
            "--do",
            "permute-blocks(seed=1)",
            "--do",
            "scale-blocks(seed=2)",
            "--do",
            "finetune(lr=0.01,epochs=1,data=mnist-digits)",
            "--data-root",
            digits_dir,
            "--eval-data",
            "mnist-digits",
        ],
        monkeypatch,
        capsys,
    )
    assert rc == 0 and "test accuracy on mnist-digits" in out, err
    assert run(["verify", key, stolen], monkeypatch, capsys)[0] == 0
    erased = workdir / "erased.safetensors"
    assert run(["attack", owner, "--out", erased, "--do", "overwrite(kind=replace)"], monkeypatch, capsys)[0] == 0
    assert run(["verify", key, erased], monkeypatch, capsys)[0] == 1
    removed = workdir / "removed.safetensors"
    assert run(["attack", owner, "--out", removed, "--do", "remove-module"], monkeypatch, capsys)[0] == 0
    assert run(["verify", key, removed], monkeypatch, capsys)[0] == 1
    rc, out, err = run(["attack", owner, "--out", removed, "--do", "prune(rate=2)"], monkeypatch, capsys)
    assert rc == 2 and "prune rate" in err

    rc, out, err = run(["study", owner, ft, "--json"], monkeypatch, capsys)
    assert rc == 0 and {g["group"] for g in json.loads(out)} >= {"sprime", "low band"}


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_bad_inputs_exit_2_with_one_line(workdir, trained, fashion_dir, monkeypatch, capsys):
    key = trained["key"]
    assert trained["embed"][0] == 0 and trained["finetune"][0] == 0
    garbage = workdir / "garbage.bin"
    garbage.write_bytes(b"\x00\x01 this is not a model" * 10)
    truncated = workdir / "trunc.safetensors"
    truncated.write_bytes(trained["ft"].read_bytes()[:3000])
    evil = workdir / "evil.pt"
    torch.save({"x": torch.zeros(1), "evil": Evil()}, evil)
    plain_pickle = workdir / "plain.pkl"
    plain_pickle.write_bytes(pickle.dumps({"a": 1}))
    wrong = workdir / "wrong.safetensors"
    from safetensors.torch import save_file

    # nothing in it reads as the module's filters (a 5x5 conv is read through its 3x3 crop: p = 1)
    save_file({"fc.weight": torch.zeros(3, 4), "conv.weight": torch.zeros(4, 5, 5, 5)}, str(wrong))
    # a file that loads is answered: nothing in it reads as the module's filters, so not found (exit 1)
    rc, out, err = run(["verify", key, wrong], monkeypatch, capsys)
    assert rc == 1 and not err and "not found" in out, (out, err)
    for suspect in (garbage, truncated, evil, plain_pickle, workdir / "missing.safetensors"):
        rc, out, err = run(["verify", key, suspect], monkeypatch, capsys)
        assert rc == 2, (suspect, out, err)
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and "this must never run" not in out
    # a key file that is not a key, and a model given as a key
    rc, out, err = run(["verify", workdir / "owner.safetensors", workdir / "ft.safetensors"], monkeypatch, capsys)
    assert rc == 2 and "not a freqprint key" in err
    rc, out, err = run(["verify", garbage, workdir / "ft.safetensors"], monkeypatch, capsys)
    assert rc == 2
    # a usage error and a bad dataset name also come back as one line
    rc, out, err = run(
        ["train", "--out", workdir / "x.safetensors", "--data", "nope", "--data-root", fashion_dir], monkeypatch, capsys
    )
    assert rc == 2 and "unknown dataset" in err
    rc, out, err = run(["embed", "--out", workdir / "x.safetensors", "--data-root", fashion_dir], monkeypatch, capsys)
    assert rc == 2 and "secret" in err


def test_bench_tracing_and_noise_from_the_command_line(workdir, fashion_dir, digits_dir, monkeypatch, capsys, tmp_path):
    out = tmp_path / "tracing"
    sets = [
        "sources=1",
        "independents=1",
        "source_limit=300",
        "source_epochs=1",
        "finetune_epochs=1",
        "lrs=[0.01]",
        "model=smallcnn",
        'model_kwargs={"width": 8}',
        "batch_size=64",
    ]
    args = [
        "bench",
        "tracing",
        "--method",
        "ours(target=conv2,filters=32),cka(layer=conv2,probes=16)",
        "--out",
        out,
        "--cache-dir",
        tmp_path / "cache",
        "--data-root",
        fashion_dir,
        "--target-root",
        digits_dir,
    ]
    rc, o, err = run([*args, *[x for s in sets for x in ("--set", s)]], monkeypatch, capsys)
    assert rc == 0, err
    r = json.loads((out / "tracing.json").read_text())
    assert set(r["methods"]) == {"ours", "cka"} and r["methods"]["cka"]["pool"] == "ours"
    assert r["methods"]["ours"]["by_lr"]["0.01"]["neg_log10_p"]["best_threshold_accuracy"] == 1.0
    assert (out / "tracing.md").exists() and (out / "tracing_roc.png").exists()
    rc, o, err = run(["bench", "tracing", "--set", "sourcez=3"], monkeypatch, capsys)
    assert rc == 2 and err.startswith("error: --set 'sourcez=3'")
    rc, o, err = run(["bench", "tracing", "--set", "sources=abc"], monkeypatch, capsys)
    assert rc == 2 and "sources needs a value like 4" in err
    # input-noise sensitivity
    model = tmp_path / "m.safetensors"
    rc, o, err = run(
        [
            "train",
            "--out",
            model,
            "--data-root",
            fashion_dir,
            "--width",
            "8",
            "--epochs",
            "2",
            "--lr",
            "0.05",
            "--batch-size",
            "64",
        ],
        monkeypatch,
        capsys,
    )
    assert rc == 0, err
    rc, o, err = run(
        [
            "bench",
            "noise",
            "--model",
            f"m={model}",
            "--data-root",
            fashion_dir,
            "--repeats",
            "1",
            "--out",
            tmp_path / "noise.json",
        ],
        monkeypatch,
        capsys,
    )
    assert rc == 0, err
    acc = json.loads((tmp_path / "noise.json").read_text())["rows"][0]["accuracy"]
    assert acc["0.5"] < acc["0.0"]  # heavy noise costs accuracy


def test_version_comes_from_the_installed_distribution(monkeypatch, capsys):
    from importlib.metadata import version

    import freqprint

    rc, out, err = run(["--version"], monkeypatch, capsys)
    assert rc == 0 and out.strip() == f"freqprint {version('freqprint')}" == f"freqprint {freqprint.__version__}"
