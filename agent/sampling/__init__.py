"""Fixed-rate sampling of the PLC into frames."""

from agent.sampling.publisher import TelemetryPublisher, changed_beyond_deadband, round_read_ms
from agent.sampling.sampler import Frame, FrameSink, MemorySink, Sampler, SamplerStats

__all__ = [
    "Frame",
    "FrameSink",
    "MemorySink",
    "Sampler",
    "SamplerStats",
    "TelemetryPublisher",
    "changed_beyond_deadband",
    "round_read_ms",
]
