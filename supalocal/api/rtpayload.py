"""The ``postgres_changes`` payload Realtime pushes for one captured change (pure)."""

from __future__ import annotations

import json

from supalocal.api.capture import Change
from supalocal.api.catalog import Table

__all__ = ["changes_payload"]


def changes_payload(change: Change, table: Table, ids: list[int]) -> str:
    """The ``postgres_changes`` push for the bindings ``ids``: ``{"ids": […], "data": {…}}``, the record
    JSON spliced in as PostgreSQL rendered it."""
    columns = json.dumps([{"name": c.name, "type": c.typname} for c in table.columns])
    parts = [
        f'"schema":{json.dumps(change.schema)}',
        f'"table":{json.dumps(change.table)}',
        f'"commit_timestamp":"{change.commit_timestamp}"',
        f'"type":"{change.type}"',
        f'"columns":{columns}',
        '"errors":null',
    ]
    if change.type != "DELETE" and change.record is not None:
        parts.append(f'"record":{change.record}')
    if change.type != "INSERT" and change.old_record is not None:
        old = change.old_record
        if change.type == "DELETE" and table.rls_enabled and table.replica_identity_full:
            # Realtime trims a DELETE's old record to the primary key on RLS tables (apply_rls)
            old = _primary_key_only(change.old_record, table.primary_key)
        parts.append(f'"old_record":{old}')
    return f'{{"ids":{json.dumps(ids)},"data":{{{",".join(parts)}}}}}'


def _primary_key_only(old_record_json: str, primary_key: tuple[str, ...]) -> str:
    """Keep only the primary-key members of a JSON object (keys are simple scalars: ints, uuids, text)."""
    doc = json.loads(old_record_json)
    return json.dumps({k: doc[k] for k in primary_key if k in doc})
