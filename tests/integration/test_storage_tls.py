"""Object storage over TLS (MODSTREAM_S3_SECURE, MODSTREAM_S3_CA_FILE): real handshakes.

nanio serves plain HTTP, so a TLS-terminating proxy with a certificate from a CA made
here stands in front of it; the S3 exchange behind it is the real server's.
"""

import ssl
import subprocess
from pathlib import Path

import pytest
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore, StorageUnavailable

from tests.proxy import CountingProxy

pytestmark = pytest.mark.integration
BUCKET = "tls-test"


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}"),
            *("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def server_certificate(folder: Path, ca_key: Path, ca_cert: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by the CA."""
    key, request, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    extensions = folder / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(
        [
            *("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(request), "-subj", "/CN=127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *("openssl", "x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key)),
            *("-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions)),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert = make_ca(folder, "modstream-test-ca")
    _, stranger_cert = make_ca(folder, "some-other-ca")
    key, cert = server_certificate(folder, ca_key, ca_cert)
    return {"ca": ca_cert, "other_ca": stranger_cert, "server_key": key, "server_cert": cert}


def tls_server(certificates: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates["server_cert"], certificates["server_key"])
    return context


async def test_s3_over_tls_with_the_configured_ca(stack_settings: Settings, certificates: dict[str, Path]) -> None:
    ObjectStore(stack_settings).ensure_bucket(BUCKET)
    async with CountingProxy(stack_settings.s3_endpoint, tls=tls_server(certificates)) as proxy:
        secure = stack_settings.model_copy(
            update={"s3_endpoint": proxy.endpoint, "s3_secure": True, "s3_ca_file": certificates["ca"]}
        )
        store = ObjectStore(secure)
        await store.aput(BUCKET, "over/tls.jpg", b"\xff\xd8\xfftls", "image/jpeg")
        assert await store.aget(BUCKET, "over/tls.jpg", max_bytes=100) == b"\xff\xd8\xfftls"
    assert proxy.bytes_to_clients > 0  # it went through the TLS endpoint
    # Written over TLS, there in the real server.
    assert ObjectStore(stack_settings).get(BUCKET, "over/tls.jpg", max_bytes=100) == b"\xff\xd8\xfftls"


@pytest.mark.parametrize("trusted", ["other_ca", None], ids=["another-ca", "system-cas"])
async def test_s3_over_tls_refuses_a_certificate_its_ca_did_not_sign(
    stack_settings: Settings, certificates: dict[str, Path], trusted: str | None
) -> None:
    async with CountingProxy(stack_settings.s3_endpoint, tls=tls_server(certificates)) as proxy:
        ca_file = certificates[trusted] if trusted else None
        secure = stack_settings.model_copy(
            update={"s3_endpoint": proxy.endpoint, "s3_secure": True, "s3_ca_file": ca_file}
        )
        with pytest.raises(StorageUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await ObjectStore(secure, pool_size=1).aget(BUCKET, "over/tls.jpg", max_bytes=100)
    assert proxy.bytes_to_clients == 0  # refused at the handshake: no request was answered
