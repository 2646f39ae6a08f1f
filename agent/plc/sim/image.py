"""The simulated PLC's memory: the four Modbus tables, addressed 0..65535, plus typed access by parameter."""

from __future__ import annotations

from agent.plc.codec import Value, decode_value, encode_value
from agent.plc.protocol import WordOrder
from agent.plc.registers import Parameter, RegisterKind

__all__ = ["TABLE_SIZE", "RegisterImage"]

TABLE_SIZE = 65536


class RegisterImage:
    """Plain lists, one per table. Typed `get`/`set` bypass write validation: the model is the plant."""

    def __init__(self, *, word_order: WordOrder = WordOrder.LITTLE) -> None:
        self.word_order = word_order
        self.bits: dict[RegisterKind, list[bool]] = {
            RegisterKind.COIL: [False] * TABLE_SIZE,
            RegisterKind.DISCRETE_INPUT: [False] * TABLE_SIZE,
        }
        self.words: dict[RegisterKind, list[int]] = {
            RegisterKind.HOLDING: [0] * TABLE_SIZE,
            RegisterKind.INPUT: [0] * TABLE_SIZE,
        }

    def get(self, param: Parameter) -> Value:
        if param.register.is_bit:
            return self.bits[param.register][param.address]
        words = self.words[param.register][param.address : param.end]
        return decode_value(param, words, self.word_order)

    def set(self, param: Parameter, value: Value) -> None:
        encoded = encode_value(param, value, self.word_order)
        if isinstance(encoded, bool):
            self.bits[param.register][param.address] = encoded
        else:
            self.words[param.register][param.address : param.end] = encoded

    def fill_address_as_value(self) -> None:
        """Each table holds a function of the address, different per table, so a test knows what every read
        must return and catches a wrong function code as surely as a wrong address:
        holding[a] = a, input[a] = 0xFFFF − a, coil[a] = a is odd, discrete_input[a] = a divisible by 3."""
        self.words[RegisterKind.HOLDING][:] = range(TABLE_SIZE)
        self.words[RegisterKind.INPUT][:] = [0xFFFF - a for a in range(TABLE_SIZE)]
        self.bits[RegisterKind.COIL][:] = [a % 2 == 1 for a in range(TABLE_SIZE)]
        self.bits[RegisterKind.DISCRETE_INPUT][:] = [a % 3 == 0 for a in range(TABLE_SIZE)]
