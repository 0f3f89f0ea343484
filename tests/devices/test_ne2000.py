"""The NE2000 / DP8390D through its ports only, as a driver sees it: expected values come from the
datasheet's register descriptions and from what Linux's ne.c probe reads, not from our model."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradekernel.devices.base import Board
from tradekernel.devices.dp8390 import multicast_hash_index
from tradekernel.devices.ne2000 import Ne2000

from .conftest import ChannelRecorder, IrqRecorder, make_board

BASE = 0x300
DATA, RESET = BASE + 0x10, BASE + 0x1F
MAC = bytes.fromhex("525400abcdef")
# Register offsets (page 0 write names)
CR, PSTART, PSTOP, BNRY, TPSR, TBCR0, TBCR1, ISR = range(8)
RSAR0, RSAR1, RBCR0, RBCR1, RCR, TCR, DCR, IMR = range(8, 16)
CURR = 7  # page 1
# CR values
STOP_NODMA, START_NODMA = 0x21, 0x22
READ, WRITE, SEND, TXP = 0x08, 0x10, 0x18, 0x04
PAGE1, PAGE2 = 0x40, 0x80
RING_START, RING_STOP, TX_PAGE = 0x46, 0x80, 0x40


class Driver:
    """The register sequences a DP8390 driver issues (as in the datasheet's initialisation
    procedure), done with port reads and writes on a bare board."""

    def __init__(self, board: Board, word: bool = True) -> None:
        self.ports = board.ports
        self.word = word

    def out(self, reg: int, value: int) -> None:
        self.ports.write(BASE + reg, 1, value)

    def inb(self, reg: int) -> int:
        return self.ports.read(BASE + reg, 1)

    def init(self, rcr: int = 0x04, mac: bytes = MAC) -> None:
        self.out(CR, STOP_NODMA)
        self.out(DCR, 0x49 if self.word else 0x48)
        self.out(RBCR0, 0)
        self.out(RBCR1, 0)
        self.out(RCR, rcr)
        self.out(TCR, 0x02)  # internal loopback while setting up
        self.out(TPSR, TX_PAGE)
        self.out(PSTART, RING_START)
        self.out(BNRY, RING_START)
        self.out(PSTOP, RING_STOP)
        self.out(ISR, 0xFF)
        self.out(IMR, 0x7F)
        self.out(CR, STOP_NODMA | PAGE1)
        for i, byte in enumerate(mac):
            self.out(1 + i, byte)
        for i in range(8):
            self.out(8 + i, 0)
        self.out(CURR, RING_START + 1)
        self.out(CR, STOP_NODMA)
        self.out(CR, START_NODMA)
        self.out(TCR, 0x00)
        self.out(BNRY, RING_START)  # Linux convention: BNRY one page behind CURR when empty

    def remote_setup(self, address: int, count: int, command: int) -> None:
        self.out(RBCR0, count & 0xFF)
        self.out(RBCR1, count >> 8)
        self.out(RSAR0, address & 0xFF)
        self.out(RSAR1, address >> 8)
        self.out(CR, 0x02 | command)

    def remote_read(self, address: int, count: int) -> bytes:
        self.remote_setup(address, count, READ)
        if self.word:
            data = self.ports.read_string(DATA, 2, (count + 1) // 2)
        else:
            data = bytes(self.ports.read(DATA, 1) for _ in range(count))
        return data[:count]

    def remote_write(self, address: int, data: bytes) -> None:
        if self.word and len(data) & 1:
            data += b"\0"
        self.remote_setup(address, len(data), WRITE)
        if self.word:
            self.ports.write_string(DATA, 2, data)
        else:
            for byte in data:
                self.ports.write(DATA, 1, byte)

    def transmit(self, frame: bytes) -> None:
        self.remote_write(TX_PAGE << 8, frame)
        self.out(ISR, 0x40)
        self.out(TBCR0, len(frame) & 0xFF)
        self.out(TBCR1, len(frame) >> 8)
        self.out(CR, 0x22 | TXP)

    def curr(self) -> int:
        self.out(CR, START_NODMA | PAGE1)
        value = self.inb(CURR)
        self.out(CR, START_NODMA)
        return value

    def drain(self) -> list[tuple[int, bytes]]:
        """Take every frame out of the ring as Linux's ei_receive does; (status, frame)."""
        frames = []
        while True:
            next_page = self.inb(BNRY) + 1
            if next_page >= RING_STOP:
                next_page = RING_START
            if next_page == self.curr():
                return frames
            header = self.remote_read(next_page << 8, 4)
            status, following, count = header[0], header[1], header[2] | header[3] << 8
            frames.append((status, self.remote_read((next_page << 8) + 4, count - 4)))
            boundary = following - 1 if following > RING_START else RING_STOP - 1
            self.out(BNRY, boundary)


def make_card(**kwargs: object) -> tuple[Board, Ne2000, Driver, ChannelRecorder, IrqRecorder]:
    board = make_board()
    card = Ne2000(mac=MAC, **kwargs)  # type: ignore[arg-type]
    card.attach(board)
    wire = ChannelRecorder()
    board.channels.listen("net0-send", wire)
    irq = IrqRecorder(board.clock)
    board.irq(card.irq_number).connect(irq)
    return board, card, Driver(board), wire, irq


def frame_to(destination: bytes, payload: bytes = b"hello", source: bytes = b"\x02" * 6) -> bytes:
    return destination + source + b"\x08\x00" + payload


def deliver(board: Board, frame: bytes) -> None:
    board.channels.send("net0-receive", frame)


# -- probe, PROM, reset -----------------------------------------------------------------------


def test_claims_32_ports_and_power_on_state() -> None:
    board, _, driver, _, _ = make_card()
    assert all(board.ports.owner(BASE + i) for i in range(32))
    assert board.ports.owner(BASE + 32) is None
    assert driver.inb(CR) == 0x21  # STP, remote DMA aborted
    assert driver.inb(ISR) & 0x80  # RST


def test_prom_reads_doubled_mac_and_ne2000_signature_in_byte_mode() -> None:
    """Linux ne.c: 32 bytes in byte mode; doubled bytes mean a 16-bit NE2000; 0x57 0x57 at
    station bytes 14-15."""
    _, _, driver, _, _ = make_card()
    driver.out(CR, STOP_NODMA)
    driver.out(DCR, 0x48)
    driver.word = False
    prom = driver.remote_read(0, 32)
    assert all(prom[i] == prom[i + 1] for i in range(0, 32, 2))
    station = prom[0::2]
    assert station[:6] == MAC
    assert station[14] == station[15] == 0x57


def test_prom_in_word_mode_gives_each_byte_twice_per_word() -> None:
    _, _, driver, _, _ = make_card()
    driver.out(DCR, 0x49)
    words = driver.remote_read(0, 12)
    assert words == bytes(b for m in MAC for b in (m, m))


def test_reset_port_read_puts_chip_offline_with_rst() -> None:
    _, _, driver, _, _ = make_card()
    driver.init()
    assert driver.inb(CR) & 0x03 == 0x02 and not driver.inb(ISR) & 0x80
    driver.ports.write(RESET, 1, driver.ports.read(RESET, 1))  # Linux: outb(inb(reset), reset)
    assert driver.inb(ISR) & 0x80
    assert driver.inb(CR) & 0x01


def test_stop_command_sets_rst_and_start_clears_it() -> None:
    _, _, driver, _, _ = make_card()
    driver.init()
    driver.out(CR, STOP_NODMA)
    assert driver.inb(ISR) & 0x80
    driver.out(CR, START_NODMA)
    assert not driver.inb(ISR) & 0x80


# -- register pages --------------------------------------------------------------------------


def test_page1_par_mar_curr_read_back() -> None:
    _, _, driver, _, _ = make_card()
    driver.out(CR, STOP_NODMA | PAGE1)
    values = list(range(0x11, 0x11 + 15))
    for reg, value in zip(range(1, 16), values, strict=True):
        driver.out(reg, value)
    assert [driver.inb(reg) for reg in range(1, 16)] == values
    assert driver.inb(CR) >> 6 == 1


def test_page2_reads_back_page0_configuration() -> None:
    _, _, driver, _, _ = make_card()
    driver.out(CR, STOP_NODMA)
    for reg, value in ((PSTART, 0x46), (PSTOP, 0x80), (TPSR, 0x40), (RCR, 0x1C), (TCR, 0x02),
                       (DCR, 0x49), (IMR, 0x15)):  # fmt: skip
        driver.out(reg, value)
    driver.out(CR, STOP_NODMA | PAGE2)
    assert driver.inb(PSTART) == 0x46 and driver.inb(PSTOP) == 0x80 and driver.inb(TPSR) == 0x40
    assert driver.inb(RCR) & 0x3F == 0x1C and driver.inb(TCR) & 0x1F == 0x02
    assert driver.inb(DCR) & 0x7F == 0x49 and driver.inb(IMR) & 0x7F == 0x15


def test_isr_is_write_one_to_clear_and_irq_follows_isr_and_imr() -> None:
    board, _, driver, _, irq = make_card()
    driver.init()
    driver.out(IMR, 0x00)
    deliver(board, frame_to(MAC))
    assert driver.inb(ISR) & 0x01 and not irq.level  # PRX pending but masked
    driver.out(IMR, 0x01)
    assert irq.level
    driver.out(ISR, 0x02)  # clearing another bit leaves PRX
    assert driver.inb(ISR) & 0x01 and irq.level
    driver.out(ISR, 0x01)
    assert not driver.inb(ISR) & 0x01 and not irq.level


# -- remote DMA ------------------------------------------------------------------------------


def test_remote_write_then_read_word_mode_sets_rdc_and_counts_crda() -> None:
    _, _, driver, _, _ = make_card()
    driver.init()
    data = bytes(range(200))
    driver.remote_write(0x4000, data)
    assert driver.inb(ISR) & 0x40  # RDC
    assert driver.inb(8) | driver.inb(9) << 8 == 0x4000 + 200  # CRDA
    driver.out(ISR, 0x40)
    assert driver.remote_read(0x4000, 200) == data
    assert driver.inb(ISR) & 0x40


def test_remote_dma_byte_mode_one_byte_per_access() -> None:
    _, _, driver, _, _ = make_card()
    driver.init()
    driver.out(DCR, 0x48)
    driver.word = False
    driver.remote_write(0x5001, b"\x01\x02\x03")  # odd address is fine in byte mode
    assert driver.remote_read(0x5001, 3) == b"\x01\x02\x03"
    driver.out(DCR, 0x49)
    driver.word = True
    assert driver.remote_read(0x5000, 4) == b"\x00\x01\x02\x03"


def test_rdc_only_when_count_reaches_zero() -> None:
    _, _, driver, _, _ = make_card()
    driver.init()
    driver.remote_setup(0x4000, 4, WRITE)
    driver.ports.write(DATA, 2, 0x1234)
    assert not driver.inb(ISR) & 0x40
    driver.ports.write(DATA, 2, 0x5678)
    assert driver.inb(ISR) & 0x40
    driver.ports.write(DATA, 2, 0xFFFF)  # past the end: nothing is written
    assert driver.remote_read(0x4000, 6) == b"\x34\x12\x78\x56\x00\x00"


def test_remote_read_wraps_from_pstop_to_pstart() -> None:
    _, _, driver, _, _ = make_card()
    driver.init()
    driver.remote_write((RING_STOP << 8) - 4, b"ABCD")
    driver.remote_write(RING_START << 8, b"EFGH")
    assert driver.remote_read((RING_STOP << 8) - 4, 8) == b"ABCDEFGH"


def test_unmapped_card_memory_reads_ff_and_ignores_writes() -> None:
    _, _, driver, _, _ = make_card()
    driver.init()
    driver.remote_write(0x9000, b"\x00\x00")
    assert driver.remote_read(0x9000, 2) == b"\xff\xff"


def test_32_bit_data_port_access_moves_two_words() -> None:
    _, _, driver, _, _ = make_card()
    driver.init()
    driver.remote_write(0x4100, b"\x01\x02\x03\x04")
    driver.remote_setup(0x4100, 4, READ)
    assert driver.ports.read(DATA, 4) == 0x04030201
    assert driver.inb(ISR) & 0x40


# -- transmit --------------------------------------------------------------------------------


def test_transmit_sends_tbcr_bytes_padded_to_60_and_sets_ptx() -> None:
    _, card, driver, wire, irq = make_card()
    driver.init()
    frame = frame_to(b"\x02" * 6, b"x" * 10, source=MAC)
    driver.transmit(frame)
    assert wire.payloads == [frame + bytes(60 - len(frame))]
    assert driver.inb(ISR) & 0x02 and irq.level
    assert driver.inb(TPSR) == 0x01  # TSR: packet transmitted
    assert not driver.inb(CR) & TXP
    big = frame_to(b"\x02" * 6, bytes(range(256)) * 5, source=MAC)
    driver.transmit(big)
    assert wire.payloads[-1] == big and card.frames_sent == 2


def test_transmit_ignored_while_stopped() -> None:
    _, _, driver, wire, _ = make_card()
    driver.init()
    driver.out(CR, STOP_NODMA)
    driver.remote_write(TX_PAGE << 8, frame_to(MAC))
    driver.out(TBCR0, 60)
    driver.out(CR, 0x21 | TXP)
    assert wire.payloads == []


def test_loopback_returns_frame_to_own_receiver_not_wire() -> None:
    _, _, driver, wire, _ = make_card()
    driver.init()
    driver.out(TCR, 0x02)
    frame = frame_to(MAC, b"loop" * 20)
    driver.transmit(frame)
    assert wire.payloads == []
    assert [f for _, f in driver.drain()] == [frame]


# -- receive ---------------------------------------------------------------------------------


def test_receive_stores_header_and_frame_and_advances_curr() -> None:
    board, card, driver, _, irq = make_card()
    driver.init()
    frame = frame_to(MAC, b"z" * 300)
    deliver(board, frame)
    assert irq.level and driver.inb(ISR) & 0x01
    header = driver.remote_read((RING_START + 1) << 8, 4)
    total = len(frame) + 4
    assert header == bytes((0x01, RING_START + 3, total & 0xFF, total >> 8))
    assert driver.curr() == RING_START + 3
    assert driver.inb(0x0C) == 0x01  # RSR: received intact
    assert driver.drain() == [(0x01, frame)]
    assert card.frames_received == 1


def test_short_frames_are_padded_to_60() -> None:
    board, _, driver, _, _ = make_card()
    driver.init()
    deliver(board, MAC + b"\x02" * 6 + b"\x08\x06")
    ((_, frame),) = driver.drain()
    assert frame == MAC + b"\x02" * 6 + b"\x08\x06" + bytes(46)


def test_address_filter_unicast_broadcast_multicast_promiscuous() -> None:
    board, _, driver, _, _ = make_card()
    group = bytes.fromhex("01005e000001")
    driver.init(rcr=0x00)
    for destination in (MAC, b"\x02" * 6, b"\xff" * 6, group):
        deliver(board, frame_to(destination))
    assert [f[:6] for _, f in driver.drain()] == [MAC]
    driver.out(RCR, 0x04)  # AB
    deliver(board, frame_to(b"\xff" * 6))
    deliver(board, frame_to(group))
    assert [(s, f[:6]) for s, f in driver.drain()] == [(0x21, b"\xff" * 6)]  # PHY set
    driver.out(RCR, 0x08)  # AM, but the hash bit is still clear
    deliver(board, frame_to(group))
    assert driver.drain() == []
    index = multicast_hash_index(group)
    driver.out(CR, START_NODMA | PAGE1)
    driver.out(8 + (index >> 3), 1 << (index & 7))
    driver.out(CR, START_NODMA)
    deliver(board, frame_to(group))
    deliver(board, frame_to(b"\xff" * 6))  # AB now off
    assert [f[:6] for _, f in driver.drain()] == [group]
    driver.out(RCR, 0x10)  # PRO
    deliver(board, frame_to(b"\x02" * 6))
    assert [f[:6] for _, f in driver.drain()] == [b"\x02" * 6]


def ether_crc_msb_first(data: bytes) -> int:
    """The Ethernet CRC as the datasheet's shift register computes it, bit by bit (IEEE 802.3
    polynomial, register preset to all ones, LSB of each byte first, no final inversion)."""
    crc = 0xFFFFFFFF
    for byte in data:
        for bit in range(8):
            feedback = ((crc >> 31) & 1) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFFFFFF
            if feedback:
                crc ^= 0x04C11DB7
    return crc


def test_multicast_hash_is_top_six_crc_bits() -> None:
    rng = random.Random(7)
    for _ in range(200):
        address = bytes([1]) + bytes(rng.randrange(256) for _ in range(5))
        assert multicast_hash_index(address) == ether_crc_msb_first(address) >> 26


def test_receiver_stopped_drops_frames() -> None:
    board, card, driver, _, _ = make_card()
    driver.init()
    driver.out(CR, STOP_NODMA)
    deliver(board, frame_to(MAC))
    driver.out(CR, START_NODMA)
    assert driver.drain() == [] and card.frames_dropped == 1


def test_frame_wraps_around_the_ring_end() -> None:
    board, _, driver, _, _ = make_card()
    driver.init()
    frames = [frame_to(MAC, bytes([i]) * 1000) for i in range(40)]
    received = []
    for frame in frames:
        deliver(board, frame)
        received += [f for _, f in driver.drain()]
    assert received == frames  # 40 x 4 pages is more than the 58-page ring: it wrapped


def test_overflow_sets_ovw_counts_missed_and_recovers_after_bnry() -> None:
    board, _, driver, _, _ = make_card()
    driver.init()
    frame = frame_to(MAC, b"q" * 1400)  # 6 pages each; the ring holds 58 pages
    for _ in range(12):
        deliver(board, frame)
    isr = driver.inb(ISR)
    assert isr & 0x10 and isr & 0x80  # OVW and RST
    missed = driver.inb(0x0F)  # CNTR2
    assert missed >= 3
    assert driver.inb(0x0F) == 0  # tally counters clear when read
    stored = driver.drain()
    assert len(stored) == 12 - missed and all(f == frame for _, f in stored)
    assert not driver.inb(ISR) & 0x80
    driver.out(ISR, 0x10)
    deliver(board, frame)
    assert [f for _, f in driver.drain()] == [frame]


def test_ready_says_when_the_ring_cannot_take_a_longest_frame_and_when_it_can_again() -> None:
    """net0-ready: False exactly when one more 1518-byte frame would not be stored (so a link
    that waits for True never causes an overflow), True again once BNRY frees the room."""
    board, card, driver, _, _ = make_card()
    ready = ChannelRecorder()
    board.channels.listen("net0-ready", ready)
    driver.init()
    assert ready.payloads == []  # ready from power-on: nothing to say
    longest = frame_to(MAC, b"L" * 1504)
    stored = 0
    while not ready.payloads:
        deliver(board, longest)
        stored += 1
    assert ready.payloads == [False] and stored == card.frames_received
    deliver(board, longest)
    assert driver.inb(ISR) & 0x10  # it was right: this one overflowed
    driver.out(ISR, 0x10)
    assert len(driver.drain()) == stored and ready.payloads == [False, True]
    deliver(board, frame_to(MAC, b"x" * 60))
    assert ready.payloads == [False, True]


def test_monitor_mode_counts_without_storing() -> None:
    board, _, driver, _, _ = make_card()
    driver.init(rcr=0x24)
    deliver(board, frame_to(MAC))
    assert driver.drain() == []
    assert driver.inb(0x0F) == 1


def test_send_packet_command_reads_next_frame_and_moves_bnry() -> None:
    board, _, driver, _, _ = make_card()
    driver.init()
    frame = frame_to(MAC, b"s" * 100)
    deliver(board, frame)
    driver.out(BNRY, RING_START + 1)  # this command reads from BNRY itself
    driver.out(RBCR0, 0xFF)
    driver.out(RBCR1, 0x0F)
    driver.out(CR, 0x02 | SEND)
    total = len(frame) + 4
    data = driver.ports.read_string(DATA, 2, total // 2 + 1)[:total]
    assert data[4:] == frame
    assert driver.inb(ISR) & 0x40
    assert driver.inb(BNRY) == RING_START + 2


def test_state_round_trip_continues_identically() -> None:
    board, card, driver, _, _ = make_card()
    driver.init()
    deliver(board, frame_to(MAC, b"1" * 500))
    saved = card.state()
    board2, card2, driver2, _, irq2 = make_card()
    card2.restore(saved)
    assert irq2.level  # the pending PRX drives the restored card's IRQ line
    for b in (board, board2):
        deliver(b, frame_to(MAC, b"2" * 70))
    assert driver.drain() == driver2.drain()
    assert card.state() == card2.state()


# -- fuzz ------------------------------------------------------------------------------------

WIDTH = st.sampled_from([1, 2, 4])
operation = st.one_of(
    st.tuples(st.just("out"), st.integers(0, 31), WIDTH, st.integers(0, 2**32 - 1)),
    st.tuples(st.just("in"), st.integers(0, 31), WIDTH, st.just(0)),
    st.tuples(st.just("ins"), st.integers(0x10, 0x17), WIDTH, st.integers(0, 900)),
    st.tuples(st.just("frame"), st.integers(0, 2000), st.integers(0, 3), st.integers(0, 255)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=120), st.booleans())
def test_fuzz_random_register_traffic_and_frames_never_raise(
    ops: list[tuple[str, int, int, int]], start: bool
) -> None:
    board, card, driver, _, _ = make_card()
    if start:
        driver.init(rcr=0x1C)
    destinations = (MAC, b"\xff" * 6, bytes.fromhex("01005e000001"), b"\x02" * 6)
    for kind, a, b, c in ops:
        if kind == "out":
            board.ports.write(BASE + a, b, c)
        elif kind == "in":
            board.ports.read(BASE + a, b)
        elif kind == "ins":
            data = board.ports.read_string(BASE + a, b, c)
            assert len(data) == b * c
        else:
            deliver(board, destinations[b] + bytes([c]) * a)
    assert len(card.ram) == 0x4000
    state = card.state()
    card.restore(state)
    assert card.state() == state


def test_curr_catching_up_with_bnry_means_full_not_empty() -> None:
    """Drivers that start with BNRY == CURR: once the frames stored bring CURR round to BNRY
    the ring is full, and the next frame must not overwrite the unread ones."""
    board, _, driver, _, _ = make_card()
    driver.init()
    driver.out(CR, START_NODMA | PAGE1)
    driver.out(CURR, 0x60)
    driver.out(CR, START_NODMA)
    driver.out(PSTART, 0x60)  # a 4-page ring, BNRY == CURR == 0x60 (empty)
    driver.out(PSTOP, 0x64)
    driver.out(BNRY, 0x60)
    first = frame_to(MAC, b"1" * 400)  # two pages each
    second = frame_to(MAC, b"2" * 400)
    deliver(board, first)
    deliver(board, second)
    assert driver.curr() == 0x60 and not driver.inb(ISR) & 0x10  # exactly full
    deliver(board, frame_to(MAC, b"3" * 100))
    assert driver.inb(ISR) & 0x10  # OVW: refused
    assert driver.remote_read(0x6004, len(first)) == first  # nothing overwritten
    assert driver.remote_read(0x6204, len(second)) == second


def test_next_page_pointer_passes_linux_8390_sanity_check_for_every_length() -> None:
    """Linux's ei_receive drops a frame whose header's next-page pointer is neither
    this + 1 + (count >> 8) nor one more (modulo the ring): check every frame length."""
    board, _, driver, _, _ = make_card()
    driver.init()
    ring_pages = RING_STOP - RING_START
    for length in range(60, 1515):
        this_frame = driver.curr()
        deliver(board, frame_to(MAC, bytes(length - 14)))
        header = driver.remote_read(this_frame << 8, 4)
        count, following = header[2] | header[3] << 8, header[1]
        assert count == length + 4
        expected = this_frame + 1 + (count >> 8)
        allowed = {expected, expected + 1, expected - ring_pages, expected + 1 - ring_pages}
        assert following in allowed, (length, this_frame, following)
        driver.drain()


def test_linux_ne_probe_sequence_finds_an_ne2000() -> None:
    """The register dance of Linux's ne.c probe: reset, the 8390 presence check (MAR5 written in
    page 1 must not show up as CNTR0 in page 0), then the PROM read in byte mode with the
    receiver in monitor mode and the transmitter in loopback."""
    board, _, driver, _, _ = make_card()
    ports = board.ports
    assert ports.read(BASE, 1) != 0xFF
    ports.write(RESET, 1, ports.read(RESET, 1))
    assert driver.inb(ISR) & 0x80
    driver.out(ISR, 0xFF)
    driver.out(CR, 0x61)  # no DMA, page 1, stop
    driver.out(0x0D, 0xFF)
    driver.out(CR, 0x20)  # no DMA, page 0
    driver.inb(0x0D)
    assert driver.inb(0x0D) == 0  # an 8390: CNTR0 cleared by the first read
    for value, reg in ((0x21, CR), (0x48, DCR), (0, RBCR0), (0, RBCR1), (0, IMR), (0xFF, ISR),
                       (0x20, RCR), (0x02, TCR), (32, RBCR0), (0, RBCR1), (0, RSAR0), (0, RSAR1),
                       (0x0A, CR)):  # fmt: skip
        driver.out(reg, value)
    prom = bytes(ports.read(DATA, 1) for _ in range(32))
    word16 = all(prom[i] == prom[i + 1] for i in range(0, 32, 2))
    station = prom[0::2] if word16 else prom[:16]
    assert word16 and station[14] == station[15] == 0x57  # "NE2000" in ne.c's words
    assert station[:6] == MAC


def test_remote_dma_with_zero_count_completes_at_once() -> None:
    _, _, driver, _, _ = make_card()
    driver.init()
    driver.out(ISR, 0x40)
    driver.remote_setup(0x4000, 0, WRITE)
    assert driver.inb(ISR) & 0x40
