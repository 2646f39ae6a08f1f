"""``/rest/v1``: PostgREST semantics over aiohttp + asyncpg (the I/O shell around :mod:`plan`).

One request = one transaction on a pooled superuser connection that first runs PostgREST's
``set_config`` preamble (search_path, role from the JWT, ``request.jwt.claims``, method, path,
headers), then the single planned statement, whose JSON PostgreSQL builds itself.

Role switching is limited as on Supabase, where PostgREST logs in as ``authenticator`` and PostgreSQL
lets it ``SET ROLE`` only to roles granted to it (anon, authenticated, service_role, and what the
project grants, e.g. ``ald_agent``). Our connection is a superuser, which PostgreSQL would let become
anyone, so the grant is checked in the same transaction (live, as PostgreSQL does) and a refused role
gets PostgreSQL's own answer: ``42501 permission denied to set role "…"`` (403, or 401 as anon); a role
that does not exist gets ``22023 role "…" does not exist`` (401) from ``set_config`` itself.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from supalocal.api.catalog import SchemaCache, load_schema_cache
from supalocal.api.errors import JSON_CONTENT_TYPE, ApiError, SchemaCacheMiss, from_postgres, status_for_sqlstate
from supalocal.api.media import CSV_CONTENT_TYPE, negotiate
from supalocal.api.plan import Plan, plan_rpc, plan_table
from supalocal.api.query import parse_prefer
from supalocal.api.ranges import content_range
from supalocal.auth import verify_token

__all__ = ["EXPOSED_SCHEMAS", "RestApi"]

EXPOSED_SCHEMAS = ("public", "graphql_public")
EXTRA_SEARCH_PATH = ("public", "extensions")
SINGULAR_MEDIA_TYPE = "application/vnd.pgrst.object+json"
RETRYABLE_STATUSES = frozenset({503, 520})  # the client retries GETs on these; never send them
AUTHENTICATOR = "authenticator"
# null: no such role (set_config then raises 22023 itself); else whether the authenticator may become it
_ROLE_CHECK = f"select pg_has_role('{AUTHENTICATOR}', r.oid, 'MEMBER') from pg_roles r where r.rolname = $1"
_PREAMBLE = """
select set_config('search_path', $1, true), set_config('role', $2, true),
       set_config('request.jwt.claims', $3, true), set_config('request.jwt.claim.role', $2, true),
       set_config('request.method', $4, true), set_config('request.path', $5, true),
       set_config('request.headers', $6, true), set_config('request.cookies', '{}', true)
"""


def bearer_token(request: web.Request) -> str | None:
    """``Authorization: Bearer`` (case-insensitive scheme), falling back to the ``apikey`` header."""
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("apikey") or None


class RestApi:
    """Owns the schema cache; its handlers are mounted by :func:`supalocal.api.create_app`."""

    def __init__(self, *, pool: asyncpg.Pool, jwt_secret: str) -> None:
        self._pool = pool
        self._secret = jwt_secret
        self._cache: SchemaCache | None = None
        self._reload_lock = asyncio.Lock()

    async def reload_schema(self) -> SchemaCache:
        """Re-read the catalog (on a miss, on ``NOTIFY pgrst``, at start-up)."""
        async with self._reload_lock, self._pool.acquire() as conn:
            self._cache = await load_schema_cache(conn, schemas=EXPOSED_SCHEMAS)
        return self._cache

    async def handle_root(self, request: web.Request) -> web.StreamResponse:
        """A minimal OpenAPI document listing the exposed tables (enough for a reachability check)."""
        verify_token(bearer_token(request), secret=self._secret)
        cache = self._cache or await self.reload_schema()
        paths: dict[str, dict[str, object]] = {f"/{name}": {} for schema, name in cache.tables if schema == "public"}
        doc = {"swagger": "2.0", "info": {"title": "supalocal"}, "paths": paths}
        return web.json_response(doc, content_type="application/openapi+json")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        claims = verify_token(bearer_token(request), secret=self._secret)
        method = request.method
        schema = self._profile(request)
        try:
            plan = await self._plan(request, schema=schema)
        except SchemaCacheMiss:
            await self.reload_schema()
            plan = await self._plan(request, schema=schema)
        role = claims["role"]
        try:
            row = await self._run(request, plan, claims=claims, schema=schema)
        except asyncpg.PostgresError as exc:
            error = from_postgres(exc, role=role)
            if method in ("GET", "HEAD") and error.status in RETRYABLE_STATUSES:
                error.status = 500
            raise error from exc
        return self._respond(request, plan, row)

    def _profile(self, request: web.Request) -> str:
        header = "Accept-Profile" if request.method in ("GET", "HEAD") else "Content-Profile"
        schema = request.headers.get(header, EXPOSED_SCHEMAS[0])
        if schema not in EXPOSED_SCHEMAS:
            raise ApiError(
                406,
                "PGRST106",
                f"Invalid schema: {schema}",
                hint=f"Only the following schemas are exposed: {', '.join(EXPOSED_SCHEMAS)}",
            )
        return schema

    async def _plan(self, request: web.Request, *, schema: str) -> Plan:
        cache = self._cache or await self.reload_schema()
        body = await request.read()
        params = list(request.query.items())
        prefs = parse_prefer(request.headers.getall("Prefer", []))
        media = negotiate(request.headers.get("Accept"))
        singular = media == "object"
        name = request.match_info["name"]
        plan = plan_rpc if request.path.startswith("/rest/v1/rpc/") else plan_table
        return plan(
            cache,
            schema=schema,
            name=name,
            method=request.method,
            params=params,
            prefs=prefs,
            body=body,
            singular=singular,
            csv=media == "csv",
            range_header=request.headers.get("Range") if request.method in ("GET", "HEAD") else None,
        )

    async def _run(
        self, request: web.Request, plan: Plan, *, claims: dict[str, Any], schema: str
    ) -> asyncpg.Record | None:
        if plan.statement is None:
            return None
        search_path = ", ".join(f'"{s}"' for s in (schema, *EXTRA_SEARCH_PATH) if s)
        headers = json.dumps({k.lower(): v for k, v in request.headers.items()})
        async with self._pool.acquire() as conn, conn.transaction(readonly=plan.read_only):
            await _check_role(conn, claims["role"])
            await conn.execute(
                _PREAMBLE,
                search_path,
                claims["role"],
                json.dumps(claims),
                request.method,
                request.path.removeprefix("/rest/v1"),
                headers,
            )
            row = await conn.fetchrow(plan.statement.sql, *plan.statement.args)
            if plan.singular and row is not None and "n" in row and row["n"] != 1:
                # raised inside the transaction so a singular mutation is rolled back, as PostgREST does
                raise ApiError(
                    406,
                    "PGRST116",
                    "Cannot coerce the result to a single JSON object",
                    details=f"The result contains {row['n']} rows",
                )
        return row

    def _respond(self, request: web.Request, plan: Plan, row: asyncpg.Record | None) -> web.StreamResponse:
        headers: dict[str, str] = {}
        if plan.kind == "rpc" and plan.rpc_shape == "void":
            return web.Response(status=204)
        if row is None:  # an empty PATCH: nothing to update
            if plan.representation:
                return web.Response(status=200, body=b"[]", headers={"Content-Type": JSON_CONTENT_TYPE})
            return web.Response(status=204)
        if plan.kind == "rpc" and plan.rpc_shape in ("scalar", "composite"):
            return self._json(200, row["body"], headers)
        n, total = row["n"], row["total"]
        body = row["first"] if plan.singular else row["body"]
        if plan.kind in ("read", "rpc"):
            status, headers["Content-Range"] = content_range(offset=plan.offset, rows=n, total=total)
            content_type = CSV_CONTENT_TYPE if plan.csv else JSON_CONTENT_TYPE
            if request.method == "HEAD":
                return web.Response(status=status, headers={**headers, "Content-Type": content_type})
            if plan.csv:
                return web.Response(
                    status=status, body=row["csv"].encode(), headers={**headers, "Content-Type": content_type}
                )
            return self._json(status, body, headers)
        headers["Content-Range"] = f"*/{total if total is not None else '*'}"
        if plan.kind == "insert":
            status = 200 if row["inserted"] == 0 and n > 0 else 201
            if not plan.representation:
                return web.Response(status=status, headers=headers)
            return self._json(status, body, headers)
        if not plan.representation:
            return web.Response(status=204, headers=headers)
        return self._json(200, body, headers)

    @staticmethod
    def _json(status: int, body: str, headers: dict[str, str]) -> web.Response:
        return web.Response(status=status, body=body.encode(), headers={**headers, "Content-Type": JSON_CONTENT_TYPE})


async def _check_role(conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], role: str) -> None:
    """Refuse a role the authenticator was not granted, as ``SET ROLE`` run by the authenticator would."""
    if await conn.fetchval(_ROLE_CHECK, role) is False:
        message = f'permission denied to set role "{role}"'
        raise ApiError(status_for_sqlstate("42501", message=message, role=role), "42501", message)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every :class:`ApiError` with PostgREST's JSON body and ``Proxy-Status`` header."""
    try:
        return await handler(request)
    except ApiError as exc:
        body = b"" if request.method == "HEAD" else exc.body()
        return web.Response(status=exc.status, body=body, headers=exc.response_headers())
