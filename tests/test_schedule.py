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


GATE = {"from_depth": 110, "factor": 0.1, "below_error": 80.0}


def test_the_gate_applies_from_its_depth_on():
    assert StepSchedule([32000], gate={**GATE, "depth": 110}).gated
    assert StepSchedule([32000], gate={**GATE, "depth": 1202}).gated
    shallow = StepSchedule([32000], gate={**GATE, "depth": 56})
    assert not shallow.gated and shallow(0) == 1.0
    assert not StepSchedule([1]).gated  # no rule, no gate


def test_the_gate_opens_at_the_first_window_below_80_percent_and_not_before():
    """A scripted sequence of windows' training errors (one report per 100 iterations): the
    rate is 0.01 until the report below 80 %, and the update right after it uses 0.1."""
    schedule = StepSchedule([32000, 48000], gate={**GATE, "depth": 110})
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = LambdaLR(optimizer, schedule)
    errors = {100: 90.0, 200: 85.0, 300: 80.0, 400: 79.9, 500: 95.0}  # 80.0 is not below 80
    rates = []
    for iteration in range(1, 601):
        rates.append(optimizer.param_groups[0]["lr"])  # the rate of this update
        optimizer.step()
        if iteration in errors:  # the module reports in the step, before the scheduler steps
            schedule.report_training_error(errors[iteration], iteration)
        scheduler.step()
    assert rates[:400] == pytest.approx([0.01] * 400)
    assert rates[400:] == pytest.approx([0.1] * 200)  # from iteration 401 on, error or not
    assert schedule.gate_record() == {"applies": True, "factor": 0.1, "below_error": 80.0,
                                      "opened_at": 400}


def test_an_open_gate_survives_a_checkpoint_of_the_scheduler():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    schedule = StepSchedule([100], gate={**GATE, "depth": 110})
    scheduler = LambdaLR(optimizer, schedule)
    schedule.report_training_error(50.0, 300)
    restored = StepSchedule([100], gate={**GATE, "depth": 110})
    LambdaLR(optimizer, restored).load_state_dict(scheduler.state_dict())
    assert restored.gate_open and restored.gate_opened_at == 300
