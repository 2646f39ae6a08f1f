"""REST over TLS trusts the system's certificate authorities (agent/cloud/trust.py), as Realtime's websockets does.

The local stack sits behind a TLS terminator whose certificate a throwaway CA signed, the way a site's
TLS-inspecting proxy presents its own CA: trusted once the CA is in the system store's settings
(`SSL_CERT_FILE`), refused with a clear, retryable error while it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from agent.cloud import CloudClient
from agent.cloud.trust import tls_context
from agent.errors import CloudTransientError
from supalocal.stack import BackgroundStack
from supalocal.testing import SEED_MACHINE_ID


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, ssl.SSLError):
        writer.close()


@contextlib.asynccontextmanager
async def tls_in_front_of(stack: BackgroundStack, ca: trustme.CA) -> AsyncIterator[str]:
    """An https:// URL whose TLS ends here and whose bytes go on to the stack's plain HTTP port."""
    host, port = stack.url.removeprefix("http://").rsplit(":", 1)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)

    open_writers: set[asyncio.StreamWriter] = set()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        open_writers.add(client_w)
        try:
            stack_r, stack_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        open_writers.add(stack_w)
        await asyncio.gather(_pipe(client_r, stack_w), _pipe(stack_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in open_writers:
            writer.close()
        for writer in open_writers:
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
        await server.wait_closed()


@pytest.fixture
def site_ca(tmp_path: Path) -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def fresh_trust() -> Iterator[None]:
    """The context is built once per process: rebuild it under this test's environment, and after it."""
    tls_context.cache_clear()
    yield
    tls_context.cache_clear()


@pytest.mark.usefixtures("fresh_trust")
async def test_rest_trusts_a_site_ca_installed_in_the_system_trust_settings(
    clean_db: BackgroundStack, site_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "site-ca.pem"
    site_ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # what OpenSSL's system defaults read first
    async with tls_in_front_of(clean_db, site_ca) as url, CloudClient(url, clean_db.service_key) as cloud:
        rows = await cloud.select("machines", columns="id", eq={"id": SEED_MACHINE_ID})
    assert [r["id"] for r in rows] == [SEED_MACHINE_ID]


@pytest.mark.usefixtures("fresh_trust")
async def test_a_certificate_no_trusted_ca_signed_is_refused_with_a_retryable_error_that_names_it(
    clean_db: BackgroundStack, site_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retryable: the records wait in the spool until the site's CA is installed, nothing is quarantined."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    async with tls_in_front_of(clean_db, site_ca) as url, CloudClient(url, clean_db.service_key) as cloud:
        with pytest.raises(CloudTransientError, match="CERTIFICATE_VERIFY_FAILED"):
            await cloud.select("machines", columns="id", eq={"id": SEED_MACHINE_ID})


async def test_the_rest_client_verifies_with_the_one_system_store_context() -> None:
    """Not httpx's default (certifi's bundle, parsed again per client): the context Realtime's websockets also
    builds from the system store. httpx keeps it on its connection pool (pinned range in pyproject.toml)."""
    ctx = tls_context()
    assert ctx is tls_context()  # parsed once per process
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    async with CloudClient("https://project.supabase.invalid", "key") as cloud:
        assert cloud._http is not None
        assert cloud._http._transport._pool._ssl_context is ctx  # type: ignore[attr-defined]
