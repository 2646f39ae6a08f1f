"""How a user's input is quoted in an error: clipped, never whole.

An error names what was wrong ("unknown parameter 'x'"), and the input it quotes can be anything the
dashboard or a file sent: a 100,000-character name, a 5,000-digit number. Copied whole, it would make the
error row as big as the input (and a number past Python's 4,300-digit limit cannot even be printed). So
every quote goes through `quote` (one value) and every whole error text through `clip`:

    >>> clip("x" * 1000, 40)
    'xxxxxxxxxxxxxxx… (985 more characters)'
"""

from __future__ import annotations

import math

from agent.limits import MAX_QUOTE_CHARS

__all__ = ["clip", "quote"]

#: Beyond this many bits an integer is described by its size: its digits would be mostly noise (and
#: `repr` refuses past 4,300 digits).
_PRINTABLE_BITS = 640


def clip(text: str, limit: int = MAX_QUOTE_CHARS) -> str:
    """`text` if it fits in `limit` characters; otherwise its start and "… (N more characters)", the whole
    at most `limit` characters long (for a `limit` below the marker's ~30 characters, the marker alone)."""
    if len(text) <= limit:
        return text
    widest = f"… ({len(text):,} more characters)"  # N is at most len(text): the marker never grows past this
    keep = max(0, limit - len(widest))
    return f"{text[:keep]}… ({len(text) - keep:,} more characters)"


def quote(value: object, limit: int = MAX_QUOTE_CHARS) -> str:
    """`repr(value)` clipped to `limit`; an integer too large to print is described by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _PRINTABLE_BITS:
        digits = math.floor(value.bit_length() * math.log10(2)) + 1
        return f"{'a negative' if value < 0 else 'an'} integer of about {digits:,} digits"
    try:
        text = repr(value)
    except ValueError:  # e.g. a container holding an unprintable integer
        return f"a {type(value).__name__}"
    return clip(text, limit)
