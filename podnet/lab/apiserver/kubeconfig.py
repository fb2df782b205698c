"""The lab's credentials and kubeconfig: a self-signed TLS certificate for the loopback address, a static
bearer token (kubectl and client-go send tokens only over TLS), and the kubeconfig that names both."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import yaml

from podnet.errors import PodnetError

CERT_DAYS = 3650


def ensure_certificate(cert: Path, key: Path) -> None:
    """Create a self-signed certificate for 127.0.0.1, ::1 and localhost (with ``openssl``) unless present.

    The certificate is its own CA (basicConstraints CA:TRUE, keyCertSign) so clients can pin it as
    ``certificate-authority-data``; the key is mode 0600.
    """
    if cert.exists() and key.exists():
        return
    cmd = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", str(CERT_DAYS), "-subj", "/CN=podnet-lab-apiserver",
        "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
        "-addext", "extendedKeyUsage=serverAuth",
    ]  # fmt: skip
    old_umask = os.umask(0o077)
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise PodnetError(
            "openssl is needed to create the lab API server's certificate (apt-get install openssl)"
        ) from exc
    except subprocess.CalledProcessError as exc:
        raise PodnetError(f"openssl failed to create the lab API server's certificate: {exc.stderr.strip()}") from exc
    finally:
        os.umask(old_umask)


def ensure_token(path: Path) -> str:
    """The token stored at ``path``, created (mode 0600) on first use so it survives restarts."""
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token


def render(
    server: str, token: str | None, ca_pem: bytes | None = None, name: str = "podnet-lab", namespace: str = "default"
) -> dict[str, Any]:
    user: dict[str, Any] = {"token": token} if token else {}
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path, server: str, token: str | None, ca_pem: bytes | None = None, name: str = "podnet-lab"
) -> Path:
    """Write the kubeconfig atomically with mode 0600 (it holds the token); returns ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(render(server, token, ca_pem, name), f, sort_keys=False)
    os.replace(tmp, path)
    return path
