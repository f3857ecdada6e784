#!/usr/bin/env python3
"""Parses Tessera's certificates and CRLs with python3-cryptography, an independent X.509 stack.

Usage: parse_with_cryptography.py ITEM...
  cert:FILE[:ISSUER]   a PEM certificate; with ISSUER (PEM), its signature is checked too
  crl:FILE:ISSUER      a DER CRL and the PEM certificate of its issuer

Every extension is decoded (cryptography raises on a malformed one). One line is printed per
item; the exit status is 1 when any item fails.
"""
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtensionOID


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def verify_signature(issuer, signature, tbs, hash_algorithm):
    key = issuer.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, tbs, ec.ECDSA(hash_algorithm))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, tbs, padding.PKCS1v15(), hash_algorithm)
    else:
        raise ValueError("unexpected issuer key type")


def check_cert(path, issuer_path):
    cert = load_cert(path)
    exts = {e.oid: e for e in cert.extensions}  # decodes every extension
    if cert.version != x509.Version.v3:
        raise ValueError("not a v3 certificate")
    bc = exts[ExtensionOID.BASIC_CONSTRAINTS]
    if not bc.critical:
        raise ValueError("basicConstraints is not critical")
    ku = exts[ExtensionOID.KEY_USAGE]
    if not ku.critical:
        raise ValueError("keyUsage is not critical")
    ski = exts[ExtensionOID.SUBJECT_KEY_IDENTIFIER].value
    aki = exts[ExtensionOID.AUTHORITY_KEY_IDENTIFIER].value
    expected_ski = x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    if ski.digest != expected_ski.digest:
        raise ValueError("subjectKeyIdentifier is not the SHA-1 of the public key")
    if issuer_path:
        issuer = load_cert(issuer_path)
        verify_signature(issuer, cert.signature, cert.tbs_certificate_bytes,
                         cert.signature_hash_algorithm)
        issuer_ski = issuer.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
        if aki.key_identifier != issuer_ski.digest:
            raise ValueError("authorityKeyIdentifier does not match the issuer")
        if cert.issuer != issuer.subject:
            raise ValueError("issuer name does not match")
    if cert.serial_number <= 0 or cert.serial_number.bit_length() > 159:
        raise ValueError("serial number is not positive within 20 octets")
    return "ca=%s pathlen=%s subject=%s serial=%X sig=%s" % (
        bc.value.ca, bc.value.path_length, cert.subject.rfc4514_string(),
        cert.serial_number, cert.signature_hash_algorithm.name)


def check_crl(path, issuer_path):
    with open(path, "rb") as f:
        crl = x509.load_der_x509_crl(f.read())
    issuer = load_cert(issuer_path)
    exts = {e.oid: e for e in crl.extensions}
    number = exts[ExtensionOID.CRL_NUMBER].value.crl_number
    aki = exts[ExtensionOID.AUTHORITY_KEY_IDENTIFIER].value
    issuer_ski = issuer.extensions.get_extension_for_oid(
        ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    if aki.key_identifier != issuer_ski.digest:
        raise ValueError("authorityKeyIdentifier does not match the issuer")
    if not crl.is_signature_valid(issuer.public_key()):
        raise ValueError("CRL signature does not verify")
    # Newer releases add timezone-aware *_utc properties and deprecate the naive ones.
    last = getattr(crl, "last_update_utc", None) or crl.last_update
    nxt = getattr(crl, "next_update_utc", None) if hasattr(crl, "next_update_utc") \
        else crl.next_update
    if nxt is None or nxt <= last:
        raise ValueError("nextUpdate missing or not after thisUpdate")
    entries = []
    for revoked in crl:
        reason = "none"
        for ext in revoked.extensions:
            if ext.oid == x509.oid.CRLEntryExtensionOID.CRL_REASON:
                reason = ext.value.reason.name
        entries.append("%X=%s" % (revoked.serial_number, reason))
    return "number=%d entries=%s" % (number, ",".join(entries) or "-")


def main(items):
    failed = 0
    for item in items:
        kind, _, rest = item.partition(":")
        path, _, issuer = rest.partition(":")
        try:
            if kind == "cert":
                summary = check_cert(path, issuer)
            elif kind == "crl":
                summary = check_crl(path, issuer)
            else:
                raise ValueError("unknown item kind %r" % kind)
            print("ok %s %s: %s" % (kind, path, summary))
        except Exception as e:  # report every failure, then exit non-zero
            failed += 1
            print("FAIL %s %s: %s: %s" % (kind, path, type(e).__name__, e))
    return 1 if failed or not items else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
