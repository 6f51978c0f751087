"""Fast checks of the deployment helpers that need no running Flower process: certificates and
keys (verified with the cryptography package, as TLS and Flower would), node-config quoting, the
``flwr`` JSON parsing, and which partners a report calls missing."""

from __future__ import annotations

import ipaddress
import json
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from federation.deployment.admet_run import missing_partners
from federation.deployment.certs import generate_credentials, load_credentials, public_key_fingerprint
from federation.deployment.control import ControlClient, ControlError, _toml_value, write_connection
from federation.deployment.nodes import SuperNodeSpec, _node_config_arg
from pipelines.errors import InputError


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    return generate_credentials(tmp_path_factory.mktemp("certs"), ["partner_00", "partner_01"],
                                hosts=("127.0.0.1", "superlink.example.org"))


def test_server_certificate_is_signed_by_the_ca_for_the_given_hosts(creds):
    ca = x509.load_pem_x509_certificate(creds.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(creds.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)  # raises if the signature or issuer is wrong
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["superlink.example.org"]
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_partner_keys_are_nist_p384_openssh_pairs_and_private_files_are_private(creds):
    fingerprints = set()
    for key in creds.partners:
        private = serialization.load_ssh_private_key(key.private_key.read_bytes(), password=None)
        public = serialization.load_ssh_public_key(key.public_key.read_bytes())
        assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
        assert private.public_key().public_numbers() == public.public_numbers()
        assert stat.S_IMODE(key.private_key.stat().st_mode) == 0o600
        fingerprints.add(public_key_fingerprint(key.public_key))
    assert len(fingerprints) == 2
    assert stat.S_IMODE(creds.ca_key.stat().st_mode) == 0o600


def test_credentials_round_trip_and_refuse_silent_overwrite(creds):
    loaded = load_credentials(creds.out_dir)
    assert loaded.partner("partner_01").public_key == creds.partner("partner_01").public_key
    with pytest.raises(InputError, match="no key for partner"):
        loaded.partner("partner_99")
    with pytest.raises(InputError, match="already holds"):
        generate_credentials(creds.out_dir, ["partner_00"])


@pytest.mark.parametrize("partners, hosts, message", [
    (["a", "a"], ("127.0.0.1",), "duplicate"),
    (["ok", "no spaces"], ("127.0.0.1",), "invalid partner id"),
    (["ok"], (), "at least one SuperLink host"),
])
def test_bad_credential_requests_name_the_problem(tmp_path, partners, hosts, message):
    with pytest.raises(InputError, match=message):
        generate_credentials(tmp_path, partners, hosts=hosts)


def test_fingerprint_rejects_a_non_key(tmp_path):
    bogus = tmp_path / "node.pub"
    bogus.write_text("not a key\n")
    with pytest.raises(InputError, match="not an OpenSSH public key"):
        public_key_fingerprint(bogus)


def test_node_config_carries_partner_data_and_work_dir(tmp_path):
    spec = SuperNodeSpec(partner="partner_03", superlink="127.0.0.1:1", ca_cert=tmp_path / "ca.crt",
                         private_key=None, data_path=tmp_path / "p3", run_dir=tmp_path,
                         extra_node_config=(("audit-dir", str(tmp_path / "a b")), ("retries", 2)))
    arg = _node_config_arg(spec)
    from flwr.common.config import parse_config_args

    parsed = parse_config_args([arg])
    assert parsed["partner-id"] == "partner_03"
    assert parsed["data-path"] == str((tmp_path / "p3").resolve())
    assert parsed["work-dir"] == str((tmp_path / "nodes" / "partner_03" / "work").resolve())
    assert parsed["audit-dir"] == str(tmp_path / "a b") and parsed["retries"] == 2
    bad = SuperNodeSpec(partner="p", superlink="x:1", ca_cert=tmp_path, private_key=None,
                        data_path=tmp_path, run_dir=tmp_path, extra_node_config=(("k", 'say "hi"'),))
    with pytest.raises(InputError, match="may not contain"):
        _node_config_arg(bad)


def test_flwr_json_output_is_parsed_and_failures_raise():
    assert ControlClient._json('Using SuperLink: x\n{\n  "success": true,\n  "run-id": "7"\n}\n')["run-id"] == "7"
    with pytest.raises(ControlError, match="Public key already in use"):
        ControlClient._json('{"success": false, "error-message": "[code: 23] Public key already in use."}')
    with pytest.raises(ControlError, match="no JSON"):
        ControlClient._json("Traceback ...")
    assert [_toml_value(v) for v in (True, 3, 0.5, 'a "b"')] == ["true", "3", "0.5", '"a \\"b\\""']


def test_connection_file_names_the_superlink_and_its_ca(tmp_path):
    import tomllib

    path = write_connection(tmp_path / "home", "127.0.0.1:9093", tmp_path / "ca.crt")
    conf = tomllib.loads(path.read_text())
    assert conf["superlink"]["default"] == "consortium"
    assert conf["superlink"]["consortium"] == {"address": "127.0.0.1:9093",
                                               "root-certificates": str((tmp_path / "ca.crt").resolve())}


def test_missing_partners_from_failures_absences_and_silence():
    result = {
        "partner_of_node": {"1": "a", "2": "b", "3": "c"},
        "round_log": [{"accepted": ["a", "b", "c"], "rejected": [], "failed": []},
                      {"accepted": ["a"], "rejected": ["b"], "failed": ["c"]}],
    }
    assert missing_partners(result, ["a", "b", "c", "d"]) == ["c", "d"]  # d never answered
    secagg = {"partner_of_node": {"1": "a", "2": "b"},
              "round_log": [{"accepted": ["<aggregate only>"], "rejected": [], "failed": []}]}
    assert missing_partners(secagg, ["a", "b"]) == []
    assert json.dumps(missing_partners({"partner_of_node": {}, "round_log": []}, [])) == "[]"


# ----------------------------------------------------------------------------- lockdown helpers
def test_app_hash_is_the_hash_flower_names_the_fab_by(tmp_path):
    import hashlib
    import shutil

    from flwr.cli.build import build_fab_from_disk

    from federation.deployment.admet_run import project_app_dir
    from federation.deployment.app_guard import app_hash, consortium_app_hash

    assert consortium_app_hash() == hashlib.sha256(build_fab_from_disk(project_app_dir())).hexdigest()
    copy = tmp_path / "app"
    shutil.copytree(project_app_dir(), copy)
    assert app_hash(copy) == consortium_app_hash()            # deterministic: same files, same hash
    (copy / "evil.py").write_text("import os\nprint(open(os.environ['HOME'] + '/data.csv').readline())\n")
    assert app_hash(copy) != consortium_app_hash()            # a module more, another app


def test_approved_apps_file_is_checked(tmp_path):
    from federation.deployment.app_guard import read_approved, write_approved

    good = "a" * 64
    path = write_approved(tmp_path / "ok.txt", [good, good.upper().lower()])
    assert read_approved(path) == (good,)
    (tmp_path / "bad.txt").write_text(f"{good}\nnot-a-hash\n")
    with pytest.raises(InputError, match="bad.txt:2"):
        read_approved(tmp_path / "bad.txt")


def test_the_guard_fits_the_pinned_flower_supernode():
    """The wrapped Flower internals still have the signature the guard was written against."""
    import inspect

    from flwr.supernode import start_client_internal as sci

    from federation.deployment.app_guard import PULL_PARAMETERS

    assert tuple(inspect.signature(sci._pull_and_store_message).parameters) == PULL_PARAMETERS
    assert hasattr(sci, "_insert_message")
    import importlib

    fsl = importlib.import_module("flwr.superlink.cli.flower_superlink")
    assert callable(fsl._parse_superlink_lifespan_config) and hasattr(fsl, "SuperLinkLifespan")


def _asgi_call(middleware, path: str, port: int) -> int:
    import asyncio

    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "path": path, "server": ("127.0.0.1", port), "client": ("10.0.0.9", 5555)}
    asyncio.run(middleware(app, operator_port=4242)(scope, receive, send))
    return sent[0]["status"]


def test_public_listener_answers_only_the_fleet_api():
    from federation.deployment.locked_superlink import OperatorOnlyMiddleware

    for path in ("/v1/control/start-run", "/v1/control/register-node", "/v1/runtime/pull-task-input",
                 "/docs", "/v1/fleetx"):
        assert _asgi_call(OperatorOnlyMiddleware, path, 9093) == 403, path
        assert _asgi_call(OperatorOnlyMiddleware, path, 4242) == 200, path
    for path in ("/v1/fleet/pull-messages", "/health"):
        assert _asgi_call(OperatorOnlyMiddleware, path, 9093) == 200, path


def test_credentials_record_absolute_paths_and_a_fold_secret(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    generate_credentials("rel", ["partner_00"])
    manifest = json.loads((tmp_path / "rel" / "credentials.json").read_text())
    assert manifest["ca_cert"].startswith("/") and manifest["fold_secret"].endswith("fold.key")
    assert stat.S_IMODE((tmp_path / "rel" / "fold.key").stat().st_mode) == 0o600
    assert len((tmp_path / "rel" / "fold.key").read_text().strip()) == 64
    monkeypatch.chdir("/")
    assert load_credentials(tmp_path / "rel").ca_cert.is_file()
