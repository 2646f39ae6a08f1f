"""The ALD reactor simulator: a plant model behind a real pymodbus TCP server, with fault injection."""

from agent.plc.sim.forcing import follow_force_file, parse_force, parse_forces
from agent.plc.sim.image import RegisterImage
from agent.plc.sim.reactor import ReactorModel
from agent.plc.sim.server import AddressFault, Simulator, ValveEvent

__all__ = [
    "AddressFault",
    "ReactorModel",
    "RegisterImage",
    "Simulator",
    "ValveEvent",
    "follow_force_file",
    "parse_force",
    "parse_forces",
]
