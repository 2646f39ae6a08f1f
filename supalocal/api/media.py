"""``Accept`` negotiation as PostgREST does it, for the media types supalocal answers (pure).

JSON (``application/json``, ``*/*``, none), one object (``application/vnd.pgrst.object[+json]``) and CSV
(``text/csv``, reads only). Anything else, including the EXPLAIN plan (``application/vnd.pgrst.plan``, off on
hosted Supabase too), is ``406 PGRST107``, as PostgREST answers a type it does not offer.
"""

from __future__ import annotations

from typing import Literal

from supalocal.api.errors import ApiError

__all__ = ["CSV_CONTENT_TYPE", "Media", "negotiate"]

Media = Literal["json", "object", "csv"]
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
_TYPES: dict[str, Media] = {
    "application/json": "json",
    "application/*": "json",
    "*/*": "json",
    "application/vnd.pgrst.object+json": "object",
    "application/vnd.pgrst.object": "object",
    "text/csv": "csv",
}


def negotiate(accept: str | None) -> Media:
    """The first acceptable media type of an ``Accept`` header (parameters such as ``q`` ignored).

    Raises:
        ApiError: 406 PGRST107 when none is offered.
    """
    if not accept or not accept.strip():
        return "json"
    requested = [part.split(";", 1)[0].strip().lower() for part in accept.split(",") if part.strip()]
    for media in requested:
        if media in _TYPES:
            return _TYPES[media]
    raise ApiError(406, "PGRST107", f"None of these media types are available: {', '.join(requested)}")
