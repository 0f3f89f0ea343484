"""The machine where the live CPU state cannot be located (emu/calibrate.py gives up, as it may
on another Unicorn build): every register, the CPL and the exception words then go through
Unicorn's API and saved contexts. That slower path is forced here and must give the same
results as the fast one."""

from __future__ import annotations

import pytest

from tests.machine import test_code_writes, test_cpu_delivery, test_irq_boundaries, test_stop_races
from tradekernel.emu import cpu


@pytest.fixture(autouse=True)
def no_live_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "locate_cpu_state", lambda _uc: None)


def test_the_fallback_is_really_taken() -> None:
    assert cpu.Cpu(4 * 1024 * 1024).state is None


@pytest.mark.parametrize(
    "test",
    [
        test_cpu_delivery.test_int_0x80_from_ring3_switches_to_the_tss_stack_and_back,
        test_cpu_delivery.test_irq_preempting_ring3_switches_stacks_and_pushes_no_error_code,
        test_cpu_delivery.test_mixed_faults_in_a_row_stay_themselves,
        test_cpu_delivery.test_same_privilege_gate_with_rpl0_selector_and_a_stack_segment_with_a_base,
        test_code_writes.test_many_rewrites_of_one_frame_from_ring3_each_run_once,
        test_irq_boundaries.test_deterministic_run_gives_the_same_trace_twice,
    ],
    ids=lambda test: test.__name__,
)
def test_delivery_and_code_writes_through_the_api(test) -> None:  # noqa: ANN001
    test()


@pytest.mark.parametrize("deterministic", [False, True], ids=["real-time", "deterministic"])
def test_cr2_survives_the_end_of_a_slice_through_the_api(deterministic: bool) -> None:
    """Here a #PF is delivered after its slice has ended, so its CR2 must outlive the stop."""
    test_stop_races.test_cr2_survives_the_end_of_a_slice(deterministic)
