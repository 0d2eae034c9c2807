"""Consortium CA, node certificates and mutual-TLS contexts for the validator transport.

How this works: the consortium keeps one CA (an ECDSA P-256 key and a self-signed
certificate constrained to signing certificates). Each validator gets a certificate
from it for its p2p host names / addresses, usable as both TLS server and TLS client,
with its ed25519 node public key written in a SAN URI (``shopchain:node:<hex>``) so an
operator reading the certificate knows which validator it belongs to. Server and client
contexts both demand TLS 1.3 and a peer certificate chaining to that CA, so a machine
without a consortium certificate cannot even open a websocket. The signed-challenge
handshake still runs on top: TLS proves "member of the consortium", the handshake
proves "holder of this validator key".

Host name checking is off by default in the client context because validators are
identified by key, not by DNS name (devnets dial 127.0.0.1); pass ``check_hostname=True``
when every certificate names the addresses peers dial.

``ssl.SSLContext.load_cert_chain`` only reads files, so contexts are built from paths;
``CertifiedKey.save`` writes the PEM files (the key with mode 0600).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ledger.errors import ChainError

#: Validity of a new consortium CA certificate.
CA_VALID_DAYS = 3650
#: Validity of a new node certificate; renew by issuing a new one from the CA.
NODE_CERT_VALID_DAYS = 825
#: Back-dating of notBefore, so a peer whose clock is slightly behind accepts a new cert.
CLOCK_SKEW_SECONDS = 300
#: URI scheme prefix of the SAN that records a node's ed25519 public key.
NODE_KEY_URI_PREFIX = "shopchain:node:"


class TLSConfigError(ChainError, ValueError):
    """A certificate or key cannot be used to build a TLS context."""


@dataclass(frozen=True)
class CertifiedKey:
    """A PEM certificate with its PEM (unencrypted PKCS#8) private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def save(self, cert_path: str, key_path: str) -> None:
        with open(cert_path, "wb") as f:
            f.write(self.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key_pem)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - datetime.timedelta(seconds=CLOCK_SKEW_SECONDS), now + datetime.timedelta(days=days)


def create_ca(common_name: str = "shopchain consortium CA", valid_days: int = CA_VALID_DAYS) -> CertifiedKey:
    """A new self-signed CA that may sign node certificates (and nothing below them)."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    not_before, not_after = _validity(valid_days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertifiedKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _san_entry(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_node_certificate(ca: CertifiedKey, node_name: str, hosts: list[str], node_public_key: bytes | None = None,
                           valid_days: int = NODE_CERT_VALID_DAYS) -> CertifiedKey:
    """A certificate for one validator, valid as TLS server and client.

    ``hosts`` are the names or IP addresses peers dial (put in the SAN);
    ``node_public_key`` (the validator's ed25519 key) is recorded as a SAN URI.
    """
    if not hosts:
        raise TLSConfigError("a node certificate needs at least one host name or IP address, found none")
    try:
        ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
        ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    except ValueError as exc:
        raise TLSConfigError(f"CA certificate or key is not valid PEM: {exc}") from None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TLSConfigError(f"expected an EC CA key, found {type(ca_key).__name__}")
    key = _new_key()
    names: list[x509.GeneralName] = [_san_entry(h) for h in hosts]
    if node_public_key is not None:
        names.append(x509.UniformResourceIdentifier(NODE_KEY_URI_PREFIX + node_public_key.hex()))
    not_before, not_after = _validity(valid_days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return CertifiedKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def node_key_from_certificate(cert_pem: bytes) -> bytes | None:
    """The ed25519 node key recorded in a node certificate, or None if it has none."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(NODE_KEY_URI_PREFIX):
            return bytes.fromhex(uri[len(NODE_KEY_URI_PREFIX):])
    return None


def _load_chain(context: ssl.SSLContext, ca_path: str, cert_path: str, key_path: str) -> None:
    try:
        context.load_verify_locations(cafile=ca_path)
        context.load_cert_chain(certfile=cert_path, keyfile=key_path)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load TLS files (ca={ca_path}, cert={cert_path}, key={key_path}): {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_3


def server_ssl_context(ca_path: str, cert_path: str, key_path: str) -> ssl.SSLContext:
    """A listener context that refuses any client without a certificate from the CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_chain(context, ca_path, cert_path, key_path)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_ssl_context(ca_path: str, cert_path: str, key_path: str, check_hostname: bool = False) -> ssl.SSLContext:
    """A dialer context that presents our certificate and accepts only CA-signed servers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _load_chain(context, ca_path, cert_path, key_path)
    context.check_hostname = check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    return context
