"""Lexing shared by the query-string parsers: top-level splitting and ``"…"`` unquoting (pure).

PostgREST splits lists on commas outside double quotes, parentheses and braces: ``or=(tags.cs.{a,b},x.eq.1)``
has two members, not three, and ``in.(a,"b,c")`` two values.
"""

from __future__ import annotations

from supalocal.api.errors import ApiError

__all__ = ["BAD_REQUEST", "bad_request", "split_top_level", "unquote"]

BAD_REQUEST = 400
_OPEN = {"(": ")", "{": "}"}
_CLOSE = {")": "(", "}": "{"}


def bad_request(message: str, details: str | None = None) -> ApiError:
    """PostgREST's 400 ``PGRST100`` for a query parameter it cannot parse."""
    return ApiError(BAD_REQUEST, "PGRST100", message, details=details)


def split_top_level(text: str, *, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside double quotes, parentheses and braces."""
    parts: list[str] = []
    stack: list[str] = []
    quoted = False
    escaped = False
    current: list[str] = []
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
            continue
        if ch == "\\" and quoted:
            current.append(ch)
            escaped = True
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in _OPEN:
            stack.append(ch)
        elif not quoted and ch in _CLOSE:
            if not stack or stack.pop() != _CLOSE[ch]:
                raise bad_request(f'"failed to parse" ({text})', "unbalanced parentheses or braces")
        elif not quoted and not stack and ch == sep:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quoted or stack:
        raise bad_request(f'"failed to parse" ({text})', "unbalanced quotes, parentheses or braces")
    parts.append("".join(current))
    return parts


def unquote(token: str) -> str:
    """Strip ``"…"`` quoting with ``\\"``/``\\\\`` escapes; bare tokens are returned as is."""
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        out: list[str] = []
        chars = iter(token[1:-1])
        for ch in chars:
            out.append(next(chars, "") if ch == "\\" else ch)
        return "".join(out)
    return token
