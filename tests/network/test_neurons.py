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


@pytest.mark.parametrize("counts", [False, True])
def test_straight_through_gradient_edges_nan_and_input_untouched(counts):
    # both ends of [0, D] pass the gradient, NaN does not; the input keeps its values (forward
    # rounds in place on its own buffer) and the upstream gradient is scaled by 1/D unless counts
    x = torch.tensor([-1e-7, 0.0, 4.0, 4.0 + 1e-6, float("nan"), 1.3], requires_grad=True)
    before = x.detach().clone()
    y = int_spike(x, 4, counts)
    y.backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, -6.0]))
    scale = 1.0 if counts else 0.25
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 0.0, 0.0, -6.0]) * scale)
    assert torch.equal(x.detach()[:4], before[:4]) and torch.isnan(x.detach()[4])


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


def test_binary_lif_fires_and_hard_resets():
    from evtrack.network.neurons import LIF

    x = torch.full((4, 1, 3), 1.5)  # tau 2: H = 0.75, 1.125 (fires, V -> 0), 0.75, 1.125
    out = LIF()(x)
    assert out[:, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0] and LIF.spike_levels == 1


def test_binary_spikes_count_one_accumulate_per_fan_out():
    from torch import nn

    from evtrack.metrics.ops import count_ops
    from evtrack.network.neurons import LIF

    lif, lin = LIF(threshold=0.5), nn.Linear(8, 5, bias=False)
    model = nn.Sequential(lif, lin)
    x = torch.rand(3, 2, 4, 8, generator=torch.Generator().manual_seed(0)) * 3
    with torch.no_grad(), count_ops(model) as c:
        model(x)
    spikes = float(lif(x).sum())
    assert 0 < spikes < x.numel()
    assert c.summary()["spike_levels"] == 1 and c.summary()["sops"] == spikes * 5 and c.summary()["macs"] == 0


def test_binary_lif_single_step_matches_the_loop():
    from evtrack.network.neurons import lif_multistep

    x = torch.randn(1, 2, 50) * 3
    loop = torch.stack([lif_multistep(torch.cat([x, x]))[0]])  # first step of a 2-step run
    assert torch.equal(lif_multistep(x), loop)
