#!/usr/bin/env python3
"""Kubelet serving certificates for every node of a nodes file with pyca/cryptography, in one
process, one node after another: what a Python script would do instead of
`kubepki issue kubelet-serving --nodes FILE --out DIR`.

    pyca_issue.py CERT_DIR NODES_FILE OUT_DIR

Per node: a new ECDSA P-256 key, a certificate signed by CERT_DIR/ca.{crt,key} with kubepki's
contents (O=system:nodes, CN=system:node:NAME, SANs the name and the IPs, serverAuth, KeyUsage
digitalSignature + keyEncipherment, CA:FALSE, the CA's key id, a random 63-bit serial, one
year backdated five minutes), written as OUT_DIR/NAME/kubelet.key (SEC 1, 0600) and
kubelet.crt (0644). No fsync (kubepki syncs its files; this is the peer's fast path).
"""
import datetime
import ipaddress
import os
import secrets
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def main():
    cert_dir, nodes_file, out = sys.argv[1:4]
    with open(os.path.join(cert_dir, "ca.crt"), "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(cert_dir, "ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), password=None)
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
        ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=365)
    os.makedirs(out, exist_ok=True)
    with open(nodes_file) as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            name = fields[0]
            ips = [ipaddress.ip_address(a) for f in fields[1:] for a in f.split(",") if a]
            key = ec.generate_private_key(ec.SECP256R1())
            subject = x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "system:node:" + name),
                ]
            )
            cert = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(secrets.randbits(63) or 1)
                .not_valid_before(not_before)
                .not_valid_after(not_after)
                .add_extension(
                    x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
                )
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(aki, critical=False)
                .add_extension(
                    x509.SubjectAlternativeName([x509.DNSName(name)] + [x509.IPAddress(i) for i in ips]),
                    critical=False,
                )
                .sign(ca_key, hashes.SHA256())
            )
            d = os.path.join(out, name)
            os.mkdir(d)
            key_pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            fd = os.open(os.path.join(d, "kubelet.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as k:
                k.write(key_pem)
            with open(os.path.join(d, "kubelet.crt"), "wb") as c:
                c.write(cert.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    main()
