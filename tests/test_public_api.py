"""Each package's public surface is pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import importlib

import pytest

SURFACES = {
    "agent.plc": [
        "ConnectionState",
        "DataType",
        "FrameRead",
        "Parameter",
        "PlcConnection",
        "PlcDevice",
        "ReadBlock",
        "RegisterKind",
        "RegisterMap",
        "Value",
        "WordOrder",
        "decode_value",
        "encode_value",
        "load_default_map",
        "load_map_csv",
        "map_from_rows",
        "parse_map_csv",
        "parse_value",
        "plan_reads",
        "validate_write",
    ],
    "agent.plc.sim": ["AddressFault", "ReactorModel", "RegisterImage", "Simulator", "ValveEvent"],
    "agent.sampling": [
        "Frame",
        "FrameSink",
        "MemorySink",
        "Sampler",
        "SamplerStats",
        "TelemetryPublisher",
        "changed_beyond_deadband",
    ],
    "agent.errors": [
        "AgentError",
        "CloudAuthError",
        "CloudError",
        "CloudPermanentError",
        "CloudTransientError",
        "CommandError",
        "ConfigError",
        "InterlockError",
        "MapError",
        "PlcConnectionError",
        "PlcError",
        "PlcExceptionResponse",
        "PlcTimeout",
        "RecipeError",
        "TransitionError",
        "UnknownParameter",
        "ValidationError",
        "WriteVerifyError",
    ],
    "agent.cloud": [
        "CloudClient",
        "CloudState",
        "KeyClaims",
        "KeyStatus",
        "Watch",
        "cloud_for",
        "is_auth_code",
        "is_transient_code",
        "read_claims",
        "realtime_refusal",
        "translate",
    ],
    "agent.config": ["Color", "LogFormat", "PlcType", "Settings", "load_settings", "unverified_claims"],
    "agent.safety": [
        "OWNER_KEY",
        "WATCHDOG_KEY",
        "ActiveRun",
        "Condition",
        "GateStats",
        "Handover",
        "HandoverState",
        "Interlock",
        "InterlockGuard",
        "InterlockKind",
        "InterlockSet",
        "Lease",
        "LeaseRole",
        "MachineFence",
        "MapGuard",
        "Op",
        "Ownership",
        "RunController",
        "RunPort",
        "TripAction",
        "TripMonitor",
        "TripWatch",
        "Violation",
        "Watchdog",
        "WriteGate",
        "WritePurpose",
        "check_write",
        "is_safe_value",
        "owner_id",
        "parse_interlocks",
        "recipe_conflicts",
        "run_records_shipped",
        "wants_machine",
    ],
}


@pytest.mark.parametrize("module", sorted(SURFACES))
def test_public_surface(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(SURFACES[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_error_tree_classifies_by_recovery() -> None:
    from agent import errors

    assert issubclass(errors.PlcTimeout, TimeoutError) and issubclass(errors.PlcTimeout, errors.PlcError)
    assert issubclass(errors.MapError, errors.ConfigError)
    assert issubclass(errors.UnknownParameter, errors.ValidationError)
    assert str(errors.UnknownParameter("unknown parameter 'x'")) == "unknown parameter 'x'"
