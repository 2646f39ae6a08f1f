"""Fixed-rate sampling of the PLC into frames."""

from agent.sampling.publisher import TelemetryPublisher, changed_beyond_deadband
from agent.sampling.sampler import Frame, FrameSink, MemorySink, Sampler, SamplerStats

__all__ = [
    "Frame",
    "FrameSink",
    "MemorySink",
    "Sampler",
    "SamplerStats",
    "TelemetryPublisher",
    "changed_beyond_deadband",
]
