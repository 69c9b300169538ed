import pytest
import torch

from evtrack.network.neurons import ILIF, int_spike


def test_int_spike_values_are_counts_over_d():
    x = torch.tensor([-1.0, 0.2, 0.6, 1.49, 1.51, 3.7, 9.0])
    out = int_spike(x, 4)
    assert torch.equal(out * 4, torch.tensor([0.0, 0.0, 1.0, 1.0, 2.0, 4.0, 4.0]))


def test_straight_through_gradient_inside_range_only():
    x = torch.tensor([-0.5, 0.3, 2.2, 3.9, 4.5], requires_grad=True)
    int_spike(x, 4).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([0.0, 0.25, 0.25, 0.25, 0.0]))


def test_inference_path_does_not_modify_input():
    x = torch.tensor([0.4, 1.6])
    with torch.no_grad():
        int_spike(x, 4)
    assert torch.equal(x, torch.tensor([0.4, 1.6]))


@pytest.mark.parametrize("t_steps", [1, 3])
def test_matches_spikingjelly_ilif(t_steps):
    sj = pytest.importorskip("spikingjelly.activation_based.neuron")
    x = torch.randn(t_steps, 5, 7) * 3
    ref = sj.ILIFNode(step_mode="m")
    expected = ref(x)  # raw counts 0..D
    got = ILIF(4, beta=1 - 1 / ref.tau)(x)
    assert torch.allclose(got * 4, expected)
