#!/usr/bin/env python3
"""An expiry check of every certificate file under a directory with pyca/cryptography: what a
Python script would do instead of `kubepki check --file DIR -o json`.

    pyca_check.py DIR

Walks DIR for *.crt, *.pem and *.cert files, skipping names that start with a dot as kubepki
does (temporary files, and the `..<stamp>` snapshots behind versioned directories, whose files
are reachable through the visible links), parses every certificate of each (a bundle yields
several), and prints one JSON document: per certificate the file, subject, NotAfter and
the seconds left, sorted by seconds left, and the count of expired ones.
"""
import datetime
import json
import os
import sys

from cryptography import x509


def main():
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    items = []
    for root, dirs, files in os.walk(sys.argv[1]):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith((".crt", ".pem", ".cert")):
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                data = f.read()
            for cert in x509.load_pem_x509_certificates(data) if hasattr(x509, "load_pem_x509_certificates") else [
                x509.load_pem_x509_certificate(data)
            ]:
                not_after = cert.not_valid_after
                items.append(
                    {
                        "path": path,
                        "subject": cert.subject.rfc4514_string(),
                        "notAfter": not_after.isoformat() + "Z",
                        "secondsLeft": int((not_after - now).total_seconds()),
                    }
                )
    items.sort(key=lambda i: i["secondsLeft"])
    json.dump({"items": items, "expired": sum(i["secondsLeft"] < 0 for i in items)}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
