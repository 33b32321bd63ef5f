"""Signing an evidence report's JSON, and checking a report: its schema, its signature and the
digests of the files it names.

A signature is Ed25519 (RFC 8032) through the ``cryptography`` package (the ``sign`` extra). It
signs a **statement** naming the SHA-256 of the JSON and of the HTML page beside it — a reader
looks at the page, so the page is signed too, and neither digest can be dropped without breaking
the signature — stored beside the JSON as ``<report>.json.sig``, itself JSON::

    {"algorithm": "ed25519", "public_key": <base64 of the 32-byte key>, "key_id": <SHA-256 of it, 16 hex>,
     "statement": {"format": "freqprint-report-signature/1", "report_sha256": <hex>, "html_sha256": <hex or null>},
     "signature": <base64 of the 64-byte signature over the statement's canonical JSON: sorted keys, no spaces>}

The public key inside the signature file only says *which* key signed; that it is the right key is
for the reader to establish: ``report verify --public-key`` pins it, and without it the check says
that the key was not pinned.  Private keys are PEM files (PKCS #8, unencrypted, or encrypted with
the passphrase in ``FREQPRINT_SIGNING_PASSPHRASE``); ``openssl genpkey -algorithm ed25519 -out
owner.pem`` makes one, ``openssl pkey -in owner.pem -pubout -out owner.pub`` its public half.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freqprint.errors import FreqprintError, UnreadableFile
from freqprint.io.files import read_small_file, sha256_file
from freqprint.report.evidence import SCHEMA

__all__ = ["InputCheck", "ReportCheck", "check_report", "sign_report", "signature_path"]

MAX_REPORT = 64 << 20  # a report larger than this is refused, not parsed
MAX_PEM = 64 << 10


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise FreqprintError("signing needs the 'cryptography' package: pip install torch==2.13.0 'freqprint[sign]'") from None
    return serialization, ed25519


def signature_path(report_json: Path) -> Path:
    return Path(str(report_json) + ".sig")


def _raw_public(public_key: Any) -> bytes:
    serialization, _ = _crypto()
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


STATEMENT_FORMAT = "freqprint-report-signature/1"


def _statement_bytes(statement: dict[str, Any]) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def _html_beside(report_json: Path) -> Path:
    from freqprint.report import report_paths

    return report_paths(report_json)[0]


def sign_report(report_json: str | os.PathLike[str], private_key: str | os.PathLike[str]) -> Path:
    """Sign the report's JSON and the HTML page beside it (if any) with an Ed25519 private key
    (PEM); returns the signature file."""
    serialization, ed25519 = _crypto()
    path = Path(report_json)
    data = bytes(read_small_file(path, MAX_REPORT, "report"))
    html = _html_beside(path)
    page = bytes(read_small_file(html, MAX_REPORT, "report page")) if html.is_file() else None
    pem = bytes(read_small_file(Path(private_key), MAX_PEM, "private key"))
    phrase = os.environ.get("FREQPRINT_SIGNING_PASSPHRASE")
    try:
        key = serialization.load_pem_private_key(pem, password=phrase.encode() if phrase else None)
    except (ValueError, TypeError) as e:
        raise FreqprintError(f"{private_key}: not a usable PEM private key ({e})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise FreqprintError(
            f"{private_key}: an Ed25519 key is needed (openssl genpkey -algorithm ed25519), got {type(key).__name__}"
        )
    pub = _raw_public(key.public_key())
    statement = {
        "format": STATEMENT_FORMAT,
        "report_sha256": hashlib.sha256(data).hexdigest(),
        "html_sha256": hashlib.sha256(page).hexdigest() if page is not None else None,
    }
    doc = {
        "algorithm": "ed25519",
        "public_key": base64.b64encode(pub).decode(),
        "key_id": hashlib.sha256(pub).hexdigest()[:16],
        "statement": statement,
        "signature": base64.b64encode(key.sign(_statement_bytes(statement))).decode(),
    }
    out = signature_path(path)
    out.write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    return out


@dataclass
class InputCheck:
    role: str
    path: str
    status: str  # "ok", "changed" (another digest), "missing"


@dataclass
class ReportCheck:
    """What ``report verify`` found.  ``ok``: the schema holds, every input is unchanged, the
    signature (if any, or if a key was pinned) is valid and the page beside it, if signed, is the
    one signed."""

    schema_errors: list[str]
    inputs: list[InputCheck]
    signature: str  # "absent", "valid", "valid (key not pinned)", "invalid", "another key"
    key_id: str | None = None
    page: str = "not signed"  # the HTML beside: "ok" (the signed digest), "changed", "missing", "not signed"
    verdict: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.schema_errors
            and all(i.status == "ok" for i in self.inputs)
            and self.signature in ("absent", "valid", "valid (key not pinned)")
            and self.page in ("ok", "not signed")
        )


def _load_public(path: Path) -> bytes:
    serialization, ed25519 = _crypto()
    pem = bytes(read_small_file(path, MAX_PEM, "public key"))
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as e:
        raise FreqprintError(f"{path}: not a PEM public key ({e})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise FreqprintError(f"{path}: an Ed25519 public key is needed, got {type(key).__name__}")
    return _raw_public(key)


def _check_signature(data: bytes, sig_file: Path, public_key: Path | None) -> tuple[str, str | None, str]:
    """``(signature status, key id, page status)`` of a signature file over ``data`` (the JSON)."""
    _, ed25519 = _crypto()
    try:
        doc = json.loads(bytes(read_small_file(sig_file, MAX_PEM, "signature")))
        pub = base64.b64decode(doc["public_key"], validate=True)
        sig = base64.b64decode(doc["signature"], validate=True)
        algorithm, statement = doc["algorithm"], doc["statement"]
        report_digest, page_digest = statement["report_sha256"], statement["html_sha256"]
    except (ValueError, KeyError, TypeError) as e:
        raise FreqprintError(f"{sig_file}: not a freqprint signature file ({e})") from None
    if algorithm != "ed25519" or len(pub) != 32 or statement.get("format") != STATEMENT_FORMAT:
        return "invalid", None, "not signed"
    key_id = hashlib.sha256(pub).hexdigest()[:16]
    if public_key is not None and _load_public(public_key) != pub:
        return "another key", key_id, "not signed"
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(pub).verify(sig, _statement_bytes(statement))
    except Exception:  # cryptography's InvalidSignature, or a malformed signature
        return "invalid", key_id, "not signed"
    if report_digest != hashlib.sha256(data).hexdigest():
        return "invalid", key_id, "not signed"  # a valid signature, over another JSON
    page = "not signed"
    if page_digest is not None:
        html = _html_beside(sig_file.with_suffix(""))
        if not html.is_file():
            page = "missing"
        else:
            page = "ok" if sha256_file(html)[0] == page_digest else "changed"
    return ("valid" if public_key is not None else "valid (key not pinned)"), key_id, page


def check_report(
    report_json: str | os.PathLike[str],
    public_key: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> ReportCheck:
    """Check a report's JSON against :data:`~freqprint.report.evidence.SCHEMA`, its signature (the
    ``.sig`` beside it; required when ``public_key`` is given) and the SHA-256 of every input it
    names (paths relative to ``root``, default the current folder)."""
    import jsonschema

    path = Path(report_json)
    data = bytes(read_small_file(path, MAX_REPORT, "report"))
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise FreqprintError(f"{path}: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise FreqprintError(f"{path}: not a freqprint report (a JSON object is expected)")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(doc))
    inputs: list[InputCheck] = []
    base = Path(root) if root is not None else Path(".")
    for i in doc.get("inputs", []) if not errors else []:
        f = Path(i["path"])
        f = f if f.is_absolute() else base / f
        if not f.is_file():
            inputs.append(InputCheck(i["role"], i["path"], "missing"))
            continue
        try:
            digest, _ = sha256_file(f)
        except UnreadableFile:
            inputs.append(InputCheck(i["role"], i["path"], "missing"))
            continue
        inputs.append(InputCheck(i["role"], i["path"], "ok" if digest == i["sha256"] else "changed"))
    sig = signature_path(path)
    signature, key_id, page = "absent", None, "not signed"
    if sig.is_file():
        signature, key_id, page = _check_signature(data, sig, Path(public_key) if public_key is not None else None)
    elif public_key is not None:
        signature = "invalid"
    notes = []
    if signature == "valid (key not pinned)":
        notes.append("the signature matches the key inside the .sig file; pass --public-key to check it is the signer you expect")
    if public_key is not None and not sig.is_file():
        notes.append(f"a public key was given but {sig} does not exist")
    verdict = doc.get("verdict") if isinstance(doc.get("verdict"), str) else None
    return ReportCheck(errors, inputs, signature, key_id=key_id, page=page, verdict=verdict, notes=notes)
