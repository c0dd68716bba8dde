"""eddsa-rdfc-2022 against the W3C test vector; bundled contexts only; tamper detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from credentials import keys, vc

pytestmark = pytest.mark.nodb  # files and pure functions only: run once, not on both databases

STANDARDS = Path(__file__).resolve().parent / "data"
VECTORS = STANDARDS / "vc-di-eddsa"
EXAMPLES_V2 = {
    "https://www.w3.org/ns/credentials/examples/v2": {
        "@context": {"@vocab": "https://www.w3.org/ns/credentials/examples#"}
    }
}


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_w3c_test_vector_is_reproduced_exactly_and_verifies():
    pair = load(VECTORS / "keyPair.json")
    unsigned = load(VECTORS / "unsigned.json")
    config = load(VECTORS / "eddsa-rdfc-2022" / "proofConfigDataInt.json")
    expected = load(VECTORS / "eddsa-rdfc-2022" / "signedDataInt.json")
    loader = vc.make_loader(EXAMPLES_V2)
    assert vc.canonize(unsigned, loader) == (VECTORS / "eddsa-rdfc-2022" / "canonDocDataInt.txt").read_text()
    signed = vc.sign(
        unsigned,
        keys.decode_private(pair["privateKeyMultibase"]),
        verification_method=config["verificationMethod"],
        created=config["created"],
        loader=loader,
    )
    assert signed["proof"]["proofValue"] == expected["proof"]["proofValue"]
    assert signed == expected
    public = keys.decode_public(pair["publicKeyMultibase"])
    assert keys.encode_public(public) == pair["publicKeyMultibase"]
    method = vc.verify(expected, lambda m: public if m == config["verificationMethod"] else None, loader)
    assert method == config["verificationMethod"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d["credentialSubject"].update(alumniOf="Another University"),
        lambda d: d.update(validFrom="2099-01-01T00:00:00Z"),
        lambda d: d["proof"].update(created="2024-01-01T00:00:00Z"),
        lambda d: d["proof"].update(proofValue=d["proof"]["proofValue"][:-2] + "11"),
    ],
)
def test_changing_anything_breaks_the_proof(tamper):
    expected = load(VECTORS / "eddsa-rdfc-2022" / "signedDataInt.json")
    pair = load(VECTORS / "keyPair.json")
    public = keys.decode_public(pair["publicKeyMultibase"])
    tamper(expected)
    with pytest.raises(vc.ProofError):
        vc.verify(expected, lambda m: public, vc.make_loader(EXAMPLES_V2))


def test_unknown_contexts_are_refused_not_fetched():
    document = {"@context": [vc.VC_V2, "https://evil.example/context.jsonld"], "type": ["VerifiableCredential"]}
    with pytest.raises(vc.ContextRefused, match=r"evil\.example"):
        vc.canonize(document)


def test_unknown_keys_and_missing_proofs_are_reported():
    signed = load(VECTORS / "eddsa-rdfc-2022" / "signedDataInt.json")
    with pytest.raises(vc.ProofError, match="not one of the issuer's published keys"):
        vc.verify(signed, lambda m: None, vc.make_loader(EXAMPLES_V2))
    with pytest.raises(vc.ProofError, match="no proof"):
        vc.verify({k: v for k, v in signed.items() if k != "proof"}, lambda m: None)


def test_bundled_contexts_match_the_published_ones():
    published = load(STANDARDS / "contexts" / "credentials-v2.jsonld")
    assert load(vc.CONTEXTS_DIR / "credentials-v2.jsonld") == published
    ours = load(vc.CONTEXTS_DIR / "ob-v3p0-3.0.3.json")["@context"]
    theirs = load(STANDARDS / "contexts" / "ob-v3p0-3.0.3.json")["@context"]
    missing = set(theirs) - set(ours)
    assert missing <= {"endorsementJwt", "jti"}, missing
    for term, definition in ours.items():
        assert theirs[term] == definition, term
    assert load(vc.CONTEXTS_DIR / "ob-v3p0-extensions.json") == load(STANDARDS / "contexts" / "ob-v3p0-extensions.json")


@pytest.mark.parametrize(
    ("url", "did"),
    [
        ("https://academy.example.org", "did:web:academy.example.org"),
        ("http://127.0.0.1:5000", "did:web:127.0.0.1%3A5000"),
        ("https://example.org/academy/", "did:web:example.org:academy"),
    ],
)
def test_did_web_from_the_public_url(url, did):
    assert keys.did_for(url) == did


def test_an_undefined_relative_type_is_left_out_of_the_quads_as_jsonld_js_does():
    """OB 3.0's credentialSchema type names no IRI under the contexts we ship: it must not be signed as a quad
    on pyld's placeholder base, which no other JSON-LD processor would produce."""
    from credentials import openbadges

    nquads = vc.canonize(
        {
            "@context": [vc.VC_V2, vc.OB_V3],
            "id": "https://academy.example/credentials/1",
            "type": ["VerifiableCredential", "OpenBadgeCredential"],
            "issuer": "did:web:academy.example",
            "credentialSchema": openbadges.CREDENTIAL_SCHEMA,
        }
    )
    assert "example.org/base" not in nquads and "1EdTechJsonSchemaValidator2019" not in nquads
    schema = openbadges.CREDENTIAL_SCHEMA[0]["id"]
    assert (
        f"<https://academy.example/credentials/1> <https://www.w3.org/2018/credentials#credentialSchema> <{schema}> ."
        in nquads
    )
