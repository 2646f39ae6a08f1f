"""The embedded default's banner: every variable the README says it prints, with values that work."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

from pydantic import SecretStr

from agent.config import load_settings
from agent.embedded import REFERENCE_MACHINE_ID, banner

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_banner_prints_every_variable_the_readme_promises() -> None:
    promised = re.search(r"set (`[A-Z_]+`(?:, `[A-Z_]+`)*,? and `[A-Z_]+`) \(the\s+embedded default prints them\)",
                         README)  # fmt: skip
    assert promised is not None, "the README no longer says which variables the embedded default prints"
    names = re.findall(r"`([A-Z_]+)`", promised.group(1))
    assert names == ["SUPABASE_URL", "SUPABASE_KEY", "MACHINE_ID"]
    settings = load_settings(
        SUPABASE_URL="http://127.0.0.1:54321", MACHINE_ID=REFERENCE_MACHINE_ID, PLC_HOST="127.0.0.1", PLC_PORT=5020
    ).model_copy(update={"SUPABASE_KEY": SecretStr("local-service-key")})
    text = banner(settings, database_url="postgresql://127.0.0.1:5432/postgres")
    exported = dict(re.findall(r"export ([A-Z_]+)=(\S+)", text))
    assert {name: exported.get(name) for name in names} == {
        "SUPABASE_URL": "http://127.0.0.1:54321", "SUPABASE_KEY": "local-service-key",
        "MACHINE_ID": str(uuid.UUID(REFERENCE_MACHINE_ID))}  # fmt: skip


def test_the_export_lines_are_valid_shell() -> None:
    settings = load_settings(SUPABASE_URL="http://127.0.0.1:1", MACHINE_ID=REFERENCE_MACHINE_ID).model_copy(
        update={"SUPABASE_KEY": SecretStr("k")}
    )
    exports = "\n".join(line for line in banner(settings, database_url="x").splitlines() if "export " in line)
    done = subprocess.run(["bash", "-c", f"set -eu\n{exports}\necho $SUPABASE_URL $MACHINE_ID $PLC_PORT"],
                          capture_output=True, text=True, timeout=10, env={})  # fmt: skip
    assert done.stdout.split() == ["http://127.0.0.1:1", REFERENCE_MACHINE_ID, "502"]
