"""Evidence reports as a person and an arbiter use them: ``--report`` on the verdict commands writes a
self-contained HTML page and a JSON that validates against its schema, is byte-identical on a
rerun, never holds a secret, and that ``report verify`` checks (signature, the inputs' digests);
the page opened in headless Chromium where it is installed."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cli_helpers import run
from conftest import small_owner
from freqprint import extract, save_model
from freqprint.report import SCHEMA, EvidenceReport, from_metav
from freqprint.report.evidence import reproducing_command
from freqprint.report.html import render

crypto = pytest.importorskip("cryptography")


def _keypair(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    k = ed25519.Ed25519PrivateKey.generate()
    priv, pub = folder / f"{name}.pem", folder / f"{name}.pub"
    priv.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub.write_bytes(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An owner (untrained SmallCNN with the module, its anchored key), a derived copy (weights
    + 1 % noise), an unrelated model (another secret's module), a file with nothing to compare,
    and two Ed25519 key pairs."""
    d = tmp_path_factory.mktemp("report")
    model, recipe = small_owner("alice")
    owner = save_model(model, d / "owner.safetensors", recipe)
    extract(model, secret="alice").save(d / "owner.key")
    copy_ = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in copy_.parameters():
            p.add_(0.01 * p.std() * torch.randn(p.shape, generator=g))
    derived = save_model(copy_, d / "derived.safetensors", recipe)
    other_model, _ = small_owner("bob")
    other = save_model(other_model, d / "other.safetensors", recipe)
    save_file({"fc.weight": torch.randn(10, 20, generator=g)}, d / "mlp.safetensors")
    return {
        "dir": d,
        "owner": owner,
        "key": d / "owner.key",
        "derived": derived,
        "other": other,
        "mlp": d / "mlp.safetensors",
        "signer": _keypair(d, "signer"),
        "stranger": _keypair(d, "stranger"),
    }


def _valid(doc: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)


def _self_contained(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    # nothing is fetched: no external URL in any src/href/url(), no script at all
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html), "an external asset"
    assert "url(http" not in html and "<script" not in html.lower() and "<link" not in html.lower()


def test_verify_report_is_self_contained_valid_reproducible_and_signed(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(files["dir"])  # relative paths, as a user types them
    priv, pub = files["signer"]
    args = [
        "verify",
        "owner.key",
        "derived.safetensors",
        "--report",
        tmp_path / "r",
        "--sign-key",
        priv,
        "--published",
        "doi:10/x",
    ]
    rc, out, err = run(args, monkeypatch, capsys)
    assert rc == 0, err
    html, js, sig = tmp_path / "r.html", tmp_path / "r.json", tmp_path / "r.json.sig"
    assert html.is_file() and js.is_file() and sig.is_file() and "report written" in err
    doc = json.loads(js.read_text())
    _valid(doc)
    assert doc["verdict"] == "derived" and doc["command"] == "verify" and doc["commitment"]["published"] == "doi:10/x"
    assert doc["commitment"]["value"] == doc["result"]["key_commitment"] and doc["commitment"]["anchored"] is True
    assert [i["role"] for i in doc["inputs"]] == ["key", "suspect"]
    assert doc["reproduce"].startswith("freqprint verify owner.key derived.safetensors")
    assert doc["environment"]["threads"] == torch.get_num_threads()
    page = html.read_text()
    _self_contained(page)
    assert html.stat().st_size < 1_000_000
    first = page[: page.index("<h2>")]  # the first screen: verdict, sentence, error probability, meaning
    assert "DERIVED" in first and "Error probability" in first and "What it does not mean" in first
    # the hit-count picture is the verdict's own arithmetic: tail at the hit count × factors = p
    fig = next(f for f in doc["channels"][0]["figures"] if f["kind"] == "hit-tail")["data"]
    from scipy.stats import binom

    tail = binom.logsf(fig["hits"] - 1, fig["filters"], fig["p1"]) / 2.302585092994046 + fig["log10_factor"]
    assert abs(min(0.0, tail) - doc["log10_p"]) < 1e-6 * max(1.0, abs(doc["log10_p"]))
    # a rerun writes byte-identical JSON (the HTML too)
    before = js.read_bytes(), html.read_bytes()
    assert run(args, monkeypatch, capsys)[0] == 0
    assert (js.read_bytes(), html.read_bytes()) == before
    # report verify: signature by the pinned key, digests of the inputs
    rc, out, err = run(["report", "verify", js, "--public-key", pub], monkeypatch, capsys)
    assert rc == 0 and "signature: valid" in out and "input suspect: ok" in out and "page: ok" in out, out + err
    rc, out, _ = run(["report", "verify", js, "--public-key", files["stranger"][1]], monkeypatch, capsys)
    assert rc == 1 and "another key" in out
    rc, out, _ = run(["report", "verify", js], monkeypatch, capsys)  # not pinned: valid, and says so
    assert rc == 0 and "key not pinned" in out


def test_report_verify_catches_a_changed_input_an_edited_report_and_a_broken_schema(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(files["key"], "owner.key")
    shutil.copy(files["derived"], "suspect.safetensors")
    priv, pub = files["signer"]
    assert run(["verify", "owner.key", "suspect.safetensors", "--report", "r", "--sign-key", priv], monkeypatch, capsys)[0] == 0
    data = Path("suspect.safetensors").read_bytes()
    Path("suspect.safetensors").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit of the suspect
    rc, out, _ = run(["report", "verify", "r.json", "--public-key", pub], monkeypatch, capsys)
    assert rc == 1 and "input suspect: changed" in out and "signature: valid" in out
    Path("suspect.safetensors").write_bytes(data)
    # the page a person reads is signed too: an edited page is caught while the JSON stays valid
    page = Path("r.html").read_text()
    Path("r.html").write_text(page.replace(">DERIVED<", ">NOT DERIVED<"))
    rc, out, _ = run(["report", "verify", "r.json", "--public-key", pub], monkeypatch, capsys)
    assert rc == 1 and "signature: valid" in out and "page: changed" in out, out
    Path("r.html").write_text(page)
    # dropping the page's digest from the signature file breaks the signature
    sig = json.loads(Path("r.json.sig").read_text())
    stripped = {**sig, "statement": {**sig["statement"], "html_sha256": None}}
    Path("r.json.sig").write_text(json.dumps(stripped))
    rc, out, _ = run(["report", "verify", "r.json", "--public-key", pub], monkeypatch, capsys)
    assert rc == 1 and "signature: invalid" in out
    Path("r.json.sig").write_text(json.dumps(sig))
    edited = Path("r.json").read_text().replace('"verdict": "derived"', '"verdict": "not derived"')
    Path("r.json").write_text(edited)
    rc, out, _ = run(["report", "verify", "r.json", "--public-key", pub], monkeypatch, capsys)
    assert rc == 1 and "signature: invalid" in out
    Path("r.json.sig").unlink()
    Path("r.json").write_text(json.dumps({**json.loads(edited), "verdict": "guilty"}))
    rc, out, _ = run(["report", "verify", "r.json"], monkeypatch, capsys)
    assert rc == 1 and "schema: verdict" in out
    Path("junk.json").write_text("{not json")
    rc, _, err = run(["report", "verify", "junk.json"], monkeypatch, capsys)
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    rc, _, err = run(["verify", "owner.key", "suspect.safetensors", "--sign-key", priv], monkeypatch, capsys)
    assert rc == 2 and "--report" in err


def test_not_derived_and_inconclusive_reports(files, tmp_path, monkeypatch, capsys):
    for suspect, rc_want, verdict in ((files["other"], 1, "not derived"), (files["mlp"], 1, "inconclusive")):
        rc, out, err = run(["verify", files["key"], suspect, "--report", tmp_path / suspect.stem], monkeypatch, capsys)
        assert rc == rc_want, err
        doc = json.loads((tmp_path / f"{suspect.stem}.json").read_text())
        _valid(doc)
        assert doc["verdict"] == verdict and doc["limitations"], doc["headline"]
        assert verdict.upper() in (tmp_path / f"{suspect.stem}.html").read_text()
    # a hostile file name reaches the page as text, never as markup
    hostile = tmp_path / "<script>alert(1)<img src=x onerror=y>.safetensors"
    shutil.copy(files["other"], hostile)
    assert run(["verify", files["key"], hostile, "--report", tmp_path / "h"], monkeypatch, capsys)[0] == 1
    page = (tmp_path / "h.html").read_text()
    _self_contained(page)
    assert "<img" not in page and "&lt;script&gt;alert(1)&lt;img" in page


def test_trace_and_claim_reports_never_hold_the_secret(files, tmp_path, monkeypatch, capsys):
    secret = "alice"
    rc, out, err = run(
        ["trace", files["owner"], files["derived"], "--init-seed", "0", "--secret", secret, "--report", tmp_path / "t"],
        monkeypatch,
        capsys,
    )
    assert rc == 0, err
    doc = json.loads((tmp_path / "t.json").read_text())
    _valid(doc)
    assert doc["verdict"] == "derived" and [c["name"] for c in doc["channels"]][:2] == ["combined", "fingerprint"]
    assert [a["factor"] for a in doc["accounting"] if a["ran"]] == [2, 2]  # Bonferroni over the two channels that ran
    assert "--secret $FREQPRINT_SECRET" in doc["reproduce"]
    claim = files["dir"] / "owner.claim"
    assert run(["claim", "create", files["owner"], "--out", claim, "--secret", secret], monkeypatch, capsys)[0] == 0
    for name, s, want in (("ok", secret, "derived"), ("bad", "mallory", "inconclusive")):
        rc, _, err = run(
            ["claim", "check", claim, f"--secret={s}", "--suspect", files["derived"], "--report", tmp_path / name],
            monkeypatch,
            capsys,
        )
        doc = json.loads((tmp_path / f"{name}.json").read_text())
        _valid(doc)
        assert doc["verdict"] == want and "--secret=$FREQPRINT_SECRET" in doc["reproduce"], doc["headline"]
        assert doc["alpha"] == 1e-6 or want != "derived"  # the suspect's test has its own level
    for f in tmp_path.iterdir():
        text = f.read_text()
        assert not re.search(rf"\b{secret}\b", text) and "mallory" not in text, f


def test_several_reports_of_one_command_are_numbered():
    from freqprint.report import numbered, report_paths

    assert numbered("out/r", 1, 1) == Path("out/r")
    assert [numbered("out/r.html", i, 2) for i in (1, 2)] == [Path("out/r-1.html"), Path("out/r-2.html")]
    assert report_paths("out/r-2.html") == (Path("out/r-2.html"), Path("out/r-2.json"))
    assert report_paths("out/r") == report_paths("out/r.json")


def test_reproducing_command_hides_secrets_in_every_spelling():
    cmd = reproducing_command(["trace", "a b.safetensors", "--secret", "s3cr3t", "--secret=also", "--secret-file", "f"])
    assert cmd == "freqprint trace 'a b.safetensors' --secret $FREQPRINT_SECRET --secret=$FREQPRINT_SECRET --secret-file f"


def test_metav_report_from_a_verdict():
    row = {
        "suspect": "s.safetensors",
        "score": 0.97,
        "threshold": 0.42,
        "agreement": 0.9,
        "p_agreement": 1e-4,
        "p_reference": 0.004,
        "reference_n": 249,
        "p_value": 0.004,
        "alpha": 0.01,
        "derived": True,
        "closeness": 0.95,
        "p_closeness": 0.02,
    }
    ref = [i / 300 for i in range(249)]
    rep = from_metav(
        row,
        {"commitment": "ab" * 32, "task": "classification", "population": {"indep-seed": 3, "null-const": 2}},
        ref,
        inputs=[],
        reproduce="freqprint metav verify c s.safetensors",
        environment={"freqprint": "x", "commit": "y", "torch": "z", "threads": 2, "python": "3"},
    )
    doc = json.loads(rep.to_json())
    _valid(doc)
    assert doc["verdict"] == "derived" and "indep-seed 3" in doc["limitations"][0]
    assert EvidenceReport.from_dict(doc).to_json() == rep.to_json()
    page = render(rep)
    _self_contained(page)
    assert "249 reference models" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs Debian's where it can)")
def test_the_page_renders_in_headless_chromium_with_the_verdict_on_the_first_screen(files, tmp_path, monkeypatch, capsys):
    from PIL import Image

    assert run(["verify", files["key"], files["derived"], "--report", tmp_path / "r"], monkeypatch, capsys)[0] == 0
    shot = tmp_path / "shot.png"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1000,900",
        f"--screenshot={shot}",
        (tmp_path / "r.html").as_uri(),
    ]
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "Chromium wrote no screenshot"
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape == (900, 1000, 3)
    # the verdict banner (DERIVED, #b2182b) is drawn on the first screen, in its upper part
    red = (np.abs(img[:300] - np.array([0xB2, 0x18, 0x2B])).max(axis=-1) < 12).sum()
    assert red > 1500, red
    # and the page is not blank below it: the figures rendered
    assert len(np.unique(img[300:].reshape(-1, 3), axis=0)) > 20
