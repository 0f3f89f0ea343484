"""The PC's pair of 8259A programmable interrupt controllers (master 0x20/0x21, slave 0xA0/0xA1).

`I8259` is one chip: an 8-input priority resolver with IRR/ISR/IMR, programmed through the ICW1-4
initialisation sequence and OCW1-3. `PicPair` is the board glue: it claims the ports (plus the
ELCR edge/level registers at 0x4D0/0x4D1), connects ISA IRQ lines 0-15, cascades the slave's
INT output into master input 2, and answers the CPU's INTR/INTA questions (InterruptController).

Choices worth knowing:
- Power-on state. `PicPair(bios_initialised=True)` (the default) resets both chips into the state
  a PC BIOS leaves them in after POST, because our BIOS layer is not 8259 code: vector bases 0x08
  and 0x70, cascade on IR2, 8086 mode, normal EOI, master IMR 0xF8 (timer, keyboard and cascade
  unmasked), slave IMR 0xFF. With `bios_initialised=False` a reset leaves each chip unprogrammed:
  it never asserts INT until software writes ICW1..ICW4.
- Edge-triggered inputs latch IRR on a rising edge and keep it until INTA, so a device may pulse
  its line. Level-triggered inputs (ELCR bit, or LTIM in ICW1) follow the line: a level request
  that drops before INTA produces the spurious vector (IRQ7 on the master, IRQ15 on the slave, the
  latter leaving the master's cascade input in service, as on real hardware).
- IRQ2 of the ISA bus is wired to slave input 1 (IRQ9), as on every AT: board lines 2 and 9 are
  ORed into that input. Master input 2 is the slave's INT output only.
- Accesses wider than a byte use the low byte; reads return the byte.
"""

from __future__ import annotations

from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version

MASTER_BASE = 0x20
SLAVE_BASE = 0xA0
ELCR_BASE = 0x4D0
CASCADE_INPUT = 2  # master input the slave's INT drives
ISA_IRQ2_INPUT = 1  # slave input the ISA bus's IRQ2 pin is routed to (IRQ9)
SPURIOUS_INPUT = 7
# ELCR bits that are hardwired to edge mode on a PIIX/ICH: IRQ0-2 and IRQ8, IRQ13.
ELCR_WRITABLE = (0xF8, 0xDE)

# ICW/OCW decoding
ICW1_IC4 = 0x01  # ICW4 will follow
ICW1_SNGL = 0x02  # single chip, no ICW3
ICW1_LTIM = 0x08  # level-triggered inputs
ICW1_INIT = 0x10
ICW4_AEOI = 0x02
ICW4_SFNM = 0x10
OCW3_MARK = 0x08
OCW3_POLL = 0x04
OCW3_RR = 0x02  # read register command: bit 0 then picks ISR (1) or IRR (0)
OCW3_RIS = 0x01
OCW3_ESMM = 0x40
OCW3_SMM = 0x20

_INIT_READY, _EXPECT_ICW2, _EXPECT_ICW3, _EXPECT_ICW4 = 0, 1, 2, 3


def _rank_of(mask: int, lowest_priority_after: int) -> int:
    """Rank (0 = highest priority) of the best request in `mask` with the rotation, or 8."""
    if mask == 0:
        return 8
    rank = 0
    while not mask & (1 << ((rank + lowest_priority_after) & 7)):
        rank += 1
    return rank


# _RANKS[rotation][mask]: the rank (0 = highest priority) of the best request in `mask` with
# that rotation, or 8; a table because the priority resolver runs on every interrupt and EOI.
_RANKS = tuple(tuple(_rank_of(mask, rotation) for mask in range(256)) for rotation in range(8))


class I8259:
    """One 8259A chip. Inputs are driven with `set_input`; the owner asks `requested_input()`."""

    _FIELDS = (
        "irr",
        "isr",
        "imr",
        "levels",
        "elcr",
        "vector_base",
        "rotation",
        "init_step",
        "initialised",
        "needs_icw4",
        "single",
        "level_mode",
        "auto_eoi",
        "rotate_on_auto_eoi",
        "special_fully_nested",
        "special_mask",
        "read_isr",
        "poll",
        "icw3",
    )

    def __init__(self, is_master: bool) -> None:
        self.is_master = is_master
        self.elcr = 0
        self.levels = 0  # current level of each input wire
        self.power_on()

    def power_on(self) -> None:
        """A raw hardware reset: registers clear, the chip waits for ICW1."""
        self.irr = 0
        self.isr = 0
        self.imr = 0
        self.vector_base = 0
        self.rotation = 0  # the input holding the highest priority (0 = fully nested order)
        self.init_step = _INIT_READY
        self.initialised = False
        self.needs_icw4 = False
        self.single = False
        self.level_mode = False
        self.auto_eoi = False
        self.rotate_on_auto_eoi = False
        self.special_fully_nested = False
        self.special_mask = False
        self.read_isr = False
        self.poll = False
        self.icw3 = 0

    def program(self, vector_base: int, imr: int) -> None:
        """Run the ICW sequence a PC BIOS uses (edge, cascade, 8086 mode) and set the mask."""
        self.write_command(ICW1_INIT | ICW1_IC4)
        self.write_data(vector_base)
        self.write_data(1 << CASCADE_INPUT if self.is_master else CASCADE_INPUT)
        self.write_data(0x01)
        self.write_data(imr)

    # -- inputs and priority ------------------------------------------------------------------

    def _level_inputs(self) -> int:
        return 0xFF if self.level_mode else self.elcr

    def set_input(self, number: int, level: bool) -> bool:
        """Drive input `number`; True if that changed the IRR (an edge input's fall never
        does, so the INT output cannot have moved)."""
        bit = 1 << number
        was_high = bool(self.levels & bit)
        irr = self.irr
        if level:
            self.levels |= bit
        else:
            self.levels &= ~bit
        if (0xFF if self.level_mode else self.elcr) & bit:  # a level-triggered input
            self.irr = (irr | bit) if level else (irr & ~bit)
        elif level and not was_high:
            self.irr = irr | bit
        return self.irr != irr

    def set_elcr(self, value: int) -> None:
        self.elcr = value
        level = self._level_inputs()
        self.irr = (self.irr & ~level) | (self.levels & level)

    def requested_input(self) -> int:
        """The input that would be delivered now, or -1 (this is the chip's INT output)."""
        requests = self.irr & ~self.imr & 0xFF
        if not requests or not self.initialised or self.init_step != _INIT_READY:
            return -1
        ranks = _RANKS[self.rotation]
        rank = ranks[requests]
        in_service = self.isr
        if self.special_mask:
            in_service &= ~self.imr
        if self.special_fully_nested and self.is_master:
            in_service &= ~(1 << CASCADE_INPUT)
        if rank < ranks[in_service & 0xFF]:
            return (rank + self.rotation) & 7
        return -1

    def acknowledge(self, number: int | None = None) -> int:
        """INTA on this chip: the input acknowledged, or -1 for a spurious acknowledge.
        `number`: the chip's requested input, when the caller keeps it (PicPair's INTR)."""
        if number is None:
            number = self.requested_input()
        if number < 0:
            return -1
        bit = 1 << number
        self.irr &= ~bit
        self.irr |= self.levels & (0xFF if self.level_mode else self.elcr) & bit
        if self.auto_eoi:
            if self.rotate_on_auto_eoi:
                self.rotation = (number + 1) & 7
        else:
            self.isr |= bit
        return number

    # -- register access ----------------------------------------------------------------------

    def write_command(self, value: int) -> None:
        """A0 = 0: ICW1, OCW2 or OCW3 (OCW2, an EOI once per interrupt, decoded here)."""
        if value & ICW1_INIT:
            self._icw1(value)
            return
        if value & OCW3_MARK:
            self._ocw3(value)
            return
        command = value >> 5
        level = value & 7
        if command in (1, 5):  # non-specific EOI, optionally rotating
            rank = _RANKS[self.rotation][self.isr & 0xFF]
            if rank != 8:
                number = (rank + self.rotation) & 7
                self.isr &= ~(1 << number)
                if command == 5:
                    self.rotation = (number + 1) & 7
        elif command in (0, 4):  # clear / set rotate in automatic EOI mode
            self.rotate_on_auto_eoi = command == 4
        elif command in (3, 7):  # specific EOI, optionally rotating
            self.isr &= ~(1 << level)
            if command == 7:
                self.rotation = (level + 1) & 7
        elif command == 6:  # set priority: `level` becomes the lowest
            self.rotation = (level + 1) & 7
        # command 2 is "no operation"

    def write_data(self, value: int) -> None:
        """A0 = 1: ICW2-4 during initialisation, OCW1 (the mask) otherwise."""
        step = self.init_step
        if step == _EXPECT_ICW2:
            self.vector_base = value & 0xF8
            if not self.single:
                self.init_step = _EXPECT_ICW3
            else:
                self._finish_icw(expect_icw4=self.needs_icw4)
        elif step == _EXPECT_ICW3:
            self.icw3 = value
            self._finish_icw(expect_icw4=self.needs_icw4)
        elif step == _EXPECT_ICW4:
            self.auto_eoi = bool(value & ICW4_AEOI)
            self.special_fully_nested = bool(value & ICW4_SFNM)
            self._finish_icw(expect_icw4=False)
        else:
            self.imr = value

    def _finish_icw(self, expect_icw4: bool) -> None:
        if expect_icw4:
            self.init_step = _EXPECT_ICW4
        else:
            self.init_step = _INIT_READY
            self.initialised = True

    def read_command(self) -> int:
        if self.poll:
            self.poll = False
            number = self.acknowledge()
            return 0x80 | number if number >= 0 else 0
        return self.isr if self.read_isr else self.irr

    def read_data(self) -> int:
        return self.imr

    def _icw1(self, value: int) -> None:
        # The datasheet: IMR cleared, IR7 lowest priority, special mask off, read IRR selected,
        # and the edge detectors reset (a wire already high must go low and high again).
        self.imr = 0
        self.isr = 0
        self.rotation = 0
        self.special_mask = False
        self.read_isr = False
        self.poll = False
        self.auto_eoi = False
        self.rotate_on_auto_eoi = False
        self.special_fully_nested = False
        self.needs_icw4 = bool(value & ICW1_IC4)
        self.single = bool(value & ICW1_SNGL)
        self.level_mode = bool(value & ICW1_LTIM)
        self.irr = self.levels & self._level_inputs()
        self.init_step = _EXPECT_ICW2

    def _ocw3(self, value: int) -> None:
        if value & OCW3_ESMM:
            self.special_mask = bool(value & OCW3_SMM)
        if value & OCW3_RR:
            self.read_isr = bool(value & OCW3_RIS)
        self.poll = bool(value & OCW3_POLL)

    # -- snapshots ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._FIELDS}

    def restore(self, state: dict[str, Any]) -> None:
        missing = [name for name in self._FIELDS if name not in state]
        if missing:
            raise ValueError(f"8259 snapshot lacks {', '.join(missing)}")
        for name in self._FIELDS:
            setattr(self, name, type(getattr(self, name))(state[name]))


class PicPair(Device):
    """The cascaded master/slave 8259A pair of a PC, and the board's interrupt controller."""

    name = "pic"
    STATE_VERSION = 1

    def __init__(self, bios_initialised: bool = True) -> None:
        self.bios_initialised = bios_initialised
        self.master = I8259(is_master=True)
        self.slave = I8259(is_master=False)
        self._board: Board | None = None
        self._line_levels = 0  # bit n: level of board IRQ line n
        self._output = -1  # the master's requested input, i.e. INTR (kept by _update)
        self.reset()

    def attach(self, board: Board) -> None:
        self._board = board
        board.ports.claim(MASTER_BASE, 2, self.name, self._read, self._write)
        board.ports.claim(SLAVE_BASE, 2, self.name, self._read, self._write)
        board.ports.claim(ELCR_BASE, 2, self.name, self._read_elcr, self._write_elcr)
        board.interrupt_controller = self
        for number in range(16):
            board.irq(number).connect(self._line_changed)

    def reset(self) -> None:
        for chip in (self.master, self.slave):
            chip.power_on()
            chip.set_elcr(0)
        if self.bios_initialised:
            self.master.program(0x08, 0xF8)
            self.slave.program(0x70, 0xFF)
        self._replay_lines()

    # -- InterruptController ------------------------------------------------------------------

    def pending(self) -> bool:
        return self._output >= 0

    def acknowledge(self) -> int:
        master = self.master
        number = master.acknowledge(self._output)  # the master's requested input, kept current
        if number == CASCADE_INPUT and not master.single:
            slave_number = self.slave.acknowledge()
            if slave_number < 0:
                vector = self.slave.vector_base + SPURIOUS_INPUT
            else:
                vector = self.slave.vector_base + slave_number
            # The slave's INT drops during INTA; a request still waiting is a fresh edge.
            master.set_input(CASCADE_INPUT, False)
            self._update()
            return vector
        if number < 0:
            self._update_master()
            return master.vector_base + SPURIOUS_INPUT
        if master.auto_eoi:
            self._update_master()  # the slave is as it was
        else:
            # Without automatic EOI the acknowledged input is now in service and outranks every
            # request left (a better one would have been acknowledged instead; special mask
            # mode keeps it, as it is unmasked): INTR is down. Two calls less on every IRQ.
            self._output = -1
        return master.vector_base + number

    # -- wiring -------------------------------------------------------------------------------

    def _line_changed(self, number: int, level: bool) -> None:
        if level:
            self._line_levels |= 1 << number
        else:
            self._line_levels &= ~(1 << number)
        if number < 8 and number != CASCADE_INPUT:  # the master's own inputs (IRQ0 mostly)
            master = self.master
            if master.set_input(number, level):  # _update_master, inline: a PIT IRQ per edge
                self._output = output = master.requested_input()
                if output >= 0 and self._board is not None:
                    self._board.interrupt_changed()
            return
        self._drive_input(number)
        self._update()

    def _drive_input(self, number: int) -> None:
        if number < 8:
            if number != CASCADE_INPUT:
                self.master.set_input(number, bool(self._line_levels & (1 << number)))
                return
            number = 8 + ISA_IRQ2_INPUT
        if number == 8 + ISA_IRQ2_INPUT:
            level = bool(self._line_levels & ((1 << 2) | (1 << 9)))
        else:
            level = bool(self._line_levels & (1 << number))
        self.slave.set_input(number - 8, level)

    def _replay_lines(self) -> None:
        for number in range(16):
            self._drive_input(number)
        self._update()

    def _update(self) -> None:
        """Propagate the slave's INT into master input 2, then tell the CPU if INTR is up."""
        self.master.set_input(CASCADE_INPUT, self.slave.requested_input() >= 0)
        self._update_master()

    def _update_master(self) -> None:
        """`_update` after a change in the master alone (the slave's INT is as it was)."""
        self._output = output = self.master.requested_input()
        if output >= 0 and self._board is not None:
            self._board.interrupt_changed()

    # -- ports --------------------------------------------------------------------------------

    def _read(self, port: int, size: int) -> int:
        chip = self.slave if port & 0x80 else self.master
        if port & 1:
            return chip.read_data()
        value = chip.read_command()
        self._update()  # a poll read acknowledges like INTA
        return value

    def _write(self, port: int, size: int, value: int) -> None:
        chip = self.slave if port & 0x80 else self.master
        if port & 1:
            chip.write_data(value & 0xFF)
        else:
            chip.write_command(value & 0xFF)
        if chip is self.master:  # an EOI to the master, mostly: once per interrupt
            self._output = output = chip.requested_input()  # _update_master, inline
            if output >= 0 and self._board is not None:
                self._board.interrupt_changed()
        else:
            self._update()

    def _read_elcr(self, port: int, size: int) -> int:
        return (self.slave if port & 1 else self.master).elcr

    def _write_elcr(self, port: int, size: int, value: int) -> None:
        index = port & 1
        chip = self.slave if index else self.master
        chip.set_elcr(value & ELCR_WRITABLE[index])
        self._update()

    # -- snapshots ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "version": self.STATE_VERSION,
            "master": self.master.state(),
            "slave": self.slave.state(),
            "line_levels": self._line_levels,
        }

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        try:
            self.master.restore(state["master"])
            self.slave.restore(state["slave"])
            self._line_levels = int(state["line_levels"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"{self.name}: malformed snapshot ({error})") from error
        self._update()
