"""Command intake (realtime + catch-up + poll → claim_command) and what each command does."""

from agent.commands.handler import CommandHandler, load_recipe
from agent.commands.intake import CommandIntake
from agent.commands.model import AckAlarmPayload, Command, CommandType, parse_command

__all__ = [
    "AckAlarmPayload",
    "Command",
    "CommandHandler",
    "CommandIntake",
    "CommandType",
    "load_recipe",
    "parse_command",
]
