"""Which certificate authorities the agent trusts for Supabase: the system's, once, for REST and Realtime alike.

Realtime's websockets already verifies `wss://` against the system store (`ssl.create_default_context()`);
httpx's default would verify REST against certifi's bundled copy instead. On a fab network that inspects TLS,
the site's CA is installed in the system store (`update-ca-certificates`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`,
which OpenSSL reads), so two stores meant REST refused what Realtime accepted. (It saves no memory: the system
bundle is parsed as eagerly as certifi's, ~2 MB either way; measured for issue 14 in bench/RESULTS.md.)
"""

from __future__ import annotations

import functools
import ssl

__all__ = ["tls_context"]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's client context: system CAs, hostname checked, certificate required."""
    return ssl.create_default_context()
