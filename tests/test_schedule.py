import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

from resnet_repro.training import StepSchedule


def learning_rates(schedule: StepSchedule, iterations: int, base_lr: float = 0.1) -> list[float]:
    """The rate each update used, stepping a real optimizer and LambdaLR as Lightning does."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = LambdaLR(optimizer, schedule)
    rates = []
    for _ in range(iterations):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_paper_schedule_divides_by_ten_at_32k_and_48k():
    rates = learning_rates(StepSchedule([32000, 48000]), 64000)
    assert rates[0] == pytest.approx(0.1)
    assert rates[31999] == pytest.approx(0.1)
    assert rates[32000] == pytest.approx(0.01)
    assert rates[47999] == pytest.approx(0.01)
    assert rates[48000] == pytest.approx(0.001)
    assert rates[63999] == pytest.approx(0.001)


def test_warmup_ramps_linearly_then_follows_the_steps():
    schedule = StepSchedule([600, 900], warmup_iters=200)
    rates = learning_rates(schedule, 1200)
    assert rates[0] == 0.0
    assert rates[100] == pytest.approx(0.05)
    assert rates[199] == pytest.approx(0.1 * 199 / 200)
    assert rates[200:600] == pytest.approx([0.1] * 400)
    assert rates[600] == pytest.approx(0.01) and rates[900] == pytest.approx(0.001)


def test_milestones_out_of_order_are_refused():
    with pytest.raises(ValueError, match="increasing"):
        StepSchedule([48000, 32000])


def test_warmup_gate_holds_the_rate_at_a_tenth_until_released():
    schedule = StepSchedule([32000, 48000], warmup_gate=0.1)
    assert schedule(0) == pytest.approx(0.1) and schedule(5000) == pytest.approx(0.1)
    schedule.release()
    assert schedule(5000) == 1.0 and schedule(32000) == pytest.approx(0.1)
    assert StepSchedule([1]).released  # no gate, nothing to release


def test_released_gate_survives_a_checkpoint_of_the_scheduler():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    schedule = StepSchedule([100], warmup_gate=0.1)
    scheduler = LambdaLR(optimizer, schedule)
    schedule.release()
    state = scheduler.state_dict()
    restored = StepSchedule([100], warmup_gate=0.1)
    LambdaLR(optimizer, restored).load_state_dict(state)
    assert restored.released
