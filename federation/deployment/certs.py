"""Consortium credentials: a private CA, the SuperLink's TLS certificate, one EC key pair per partner.

Two different things are generated here, and they answer two different questions:

* **TLS** (CA + server certificate): "am I talking to the consortium's SuperLink, and is the channel
  encrypted?" Every SuperNode and the operator's ``flwr`` CLI trust ``ca.crt``.
* **SuperNode authentication** (one NIST P-384 key pair per partner, OpenSSH format as Flower 1.42
  expects): "is this SuperNode a registered partner?" The SuperLink only accepts SuperNodes whose
  public key the operator registered; the private key never leaves the partner.

Layout written under ``out_dir``::

    ca.crt  ca.key                     # the consortium CA (keep ca.key offline)
    superlink.crt  superlink.key       # SuperLink TLS, SAN = the given hosts / IPs
    partners/<id>/node.key             # partner private key (ship only to that partner)
    partners/<id>/node.pub             # partner public key (the operator registers it)
    fold.key                           # the consortium's fold secret (every partner gets it; 0600)
    credentials.json                   # manifest: paths, hosts, partners, validity
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipelines.errors import InputError

log = logging.getLogger(__name__)

PARTNER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_HOSTS = ("127.0.0.1", "localhost")
MANIFEST = "credentials.json"
FOLD_SECRET = "fold.key"


@dataclass(frozen=True, slots=True)
class PartnerKey:
    """One partner's SuperNode authentication key pair."""

    partner: str
    """Partner id (also the SuperNode name registered at the SuperLink)."""
    private_key: Path
    """OpenSSH-format EC private key; stays with the partner."""
    public_key: Path
    """OpenSSH-format EC public key; the operator registers it at the SuperLink."""


@dataclass(frozen=True, slots=True)
class ConsortiumCredentials:
    """Paths of everything :func:`generate_credentials` wrote."""

    out_dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    hosts: tuple[str, ...]
    partners: tuple[PartnerKey, ...] = field(default_factory=tuple)

    def partner(self, partner_id: str) -> PartnerKey:
        for key in self.partners:
            if key.partner == partner_id:
                return key
        raise InputError(f"no key for partner {partner_id!r} in {self.out_dir}")

    def to_json(self) -> dict:
        data = asdict(self)
        return json.loads(json.dumps(data, default=str))


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san_entries(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _validate(partners: list[str], hosts: tuple[str, ...], days: int) -> None:
    if not hosts:
        raise InputError("at least one SuperLink host name or IP is needed for the certificate")
    bad = [p for p in partners if not PARTNER_ID_PATTERN.match(p)]
    if bad:
        raise InputError(
            f"invalid partner id(s) {bad}: use letters, digits, '_', '-', '.' (max 64 chars)"
        )
    dupes = sorted({p for p in partners if partners.count(p) > 1})
    if dupes:
        raise InputError(f"duplicate partner id(s): {dupes}")
    if days < 1:
        raise InputError(f"certificate validity must be at least 1 day, got {days}")


def generate_partner_key(partner: str, partner_dir: Path) -> PartnerKey:
    """Write a fresh P-384 key pair for one partner (OpenSSH format) and return its paths."""
    key = ec.generate_private_key(ec.SECP384R1())
    private_path = partner_dir / "node.key"
    public_path = partner_dir / "node.pub"
    _write_private(
        private_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    public_path.write_bytes(public + f" {partner}\n".encode())
    return PartnerKey(partner=partner, private_key=private_path, public_key=public_path)


def generate_credentials(
    out_dir: str | Path,
    partners: list[str],
    hosts: tuple[str, ...] | list[str] = DEFAULT_HOSTS,
    days: int = 365,
    overwrite: bool = False,
) -> ConsortiumCredentials:
    """Create the consortium CA, the SuperLink certificate and one key pair per partner."""
    out = Path(out_dir).resolve()  # the manifest records absolute paths: later commands may run elsewhere
    hosts = tuple(hosts)
    _validate(list(partners), hosts, days)
    if (out / MANIFEST).exists() and not overwrite:
        raise InputError(
            f"{out} already holds consortium credentials; pass overwrite to replace them "
            "(registered partner keys would stop working)"
        )
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedadmet consortium"),
        x509.NameAttribute(NameOID.COMMON_NAME, "fedadmet consortium CA"),
    ])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA384())
    )

    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedadmet consortium"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        ]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA384())
    )

    paths = {
        "ca_cert": out / "ca.crt",
        "ca_key": out / "ca.key",
        "server_cert": out / "superlink.crt",
        "server_key": out / "superlink.key",
    }
    paths["ca_cert"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths["ca_key"], _pem_key(ca_key))
    paths["server_cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths["server_key"], _pem_key(server_key))

    keys = tuple(generate_partner_key(p, out / "partners" / p) for p in partners)
    # the consortium's fold secret (keyed scaffold folds, pipelines.split): every partner gets this file
    _write_private(out / FOLD_SECRET, secrets.token_hex(32).encode() + b"\n")
    creds = ConsortiumCredentials(out_dir=out, hosts=hosts, partners=keys, **paths)
    manifest = creds.to_json() | {
        "fold_secret": str(out / FOLD_SECRET),
        "valid_from": now.isoformat(),
        "valid_until": until.isoformat(),
        "key_type": "EC P-384 (SuperNode keys in OpenSSH format)",
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    log.info("wrote CA, SuperLink certificate for %s and %d partner keys to %s",
             ", ".join(hosts), len(keys), out)
    return creds


def load_credentials(out_dir: str | Path) -> ConsortiumCredentials:
    """Read the manifest written by :func:`generate_credentials` and check the files exist."""
    out = Path(out_dir)
    manifest = out / MANIFEST
    if not manifest.is_file():
        raise InputError(f"no {MANIFEST} in {out}: run `fedadmet certs --out {out}` first")
    data = json.loads(manifest.read_text())
    out = out.resolve()

    def where(recorded: str) -> Path:
        """A recorded path; a relative one (older manifests) is found relative to the folder."""
        path = Path(recorded)
        if path.is_absolute():
            return path
        parts = path.parts
        for i in range(len(parts)):
            candidate = out.joinpath(*parts[i:])
            if candidate.exists():
                return candidate
        return out / path.name

    partners = tuple(
        PartnerKey(p["partner"], where(p["private_key"]), where(p["public_key"]))
        for p in data.get("partners", [])
    )
    creds = ConsortiumCredentials(
        out_dir=out,
        ca_cert=where(data["ca_cert"]),
        ca_key=where(data["ca_key"]),
        server_cert=where(data["server_cert"]),
        server_key=where(data["server_key"]),
        hosts=tuple(data["hosts"]),
        partners=partners,
    )
    missing = [str(p) for p in (creds.ca_cert, creds.server_cert, creds.server_key) if not p.is_file()]
    if missing:
        raise InputError(f"consortium credentials incomplete, missing: {missing}")
    return creds


def public_key_fingerprint(public_key_path: str | Path) -> str:
    """SHA-256 fingerprint of an OpenSSH public key (what partners compare out of band)."""
    path = Path(public_key_path)
    if not path.is_file():
        raise InputError(f"public key file not found: {path}")
    try:
        key = serialization.load_ssh_public_key(path.read_bytes())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{path} is not an OpenSSH public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InputError(f"{path} is not an EC public key (Flower needs a NIST EC curve)")
    digest = hashes.Hash(hashes.SHA256())
    digest.update(key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return "SHA256:" + digest.finalize().hex()
