import pytest
import torch
from torch import nn

from evtrack.metrics.ops import count_ops, spike_count
from evtrack.pruning import apply_pruning

from .fakes import FakeModel, tokens


class ILIFLike(nn.Module):
    spike_levels = 4  # declares its outputs k/4: the attribute op counting reads, whatever the class is called

    def forward(self, x):
        return torch.clamp(x, 0, 4).round() / 4


class Tiny(nn.Module):
    """stem conv on a real frame (MACs) -> spike -> 3x3 conv (SOPs) -> spike -> linear (SOPs) + matmul."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.lif = ILIFLike()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.fc = nn.Linear(2, 5, bias=False)

    def forward(self, frame, s_conv, s_fc, s_mm, w_mm):
        self.stem(frame)
        self.conv(s_conv)
        self.fc(s_fc)
        return s_mm @ w_mm


@pytest.mark.parametrize("ctx", [torch.no_grad, torch.inference_mode, torch.enable_grad])
def test_hand_computed_counts(ctx):
    m = Tiny()
    frame = torch.full((1, 1, 4, 4), 0.3)
    s_conv = torch.zeros(1, 2, 4, 4)
    s_conv[0, 0, 0, 0] = 0.75  # count 3 in a corner: reaches 2x2 outputs, 3 out channels -> 3*4*3 = 36
    s_conv[0, 1, 1, 1] = 0.25  # count 1 inside: reaches 3x3 outputs x 3 channels = 27
    s_fc = torch.tensor([[0.5, 1.0], [0.0, 0.25]])  # counts 2+4+0+1 = 7, fan-out 5 -> 35
    s_mm = torch.tensor([[0.25, 0.0, 0.5]])  # counts 1+2 = 3 into 4 columns -> 12
    w_mm = torch.randn(3, 4)
    with ctx(), count_ops(m) as c:
        m(frame, s_conv, s_fc, s_mm, w_mm)
    s = c.summary()
    assert s["spike_levels"] == 4
    assert s["macs"] == 4 * 4 * 2 * 9  # 16 output pixels x 2 channels x fan-in 9
    assert s["sops"] == 36 + 27 + 35 + 12
    assert s["energy_mj"] == pytest.approx((4.6 * 288 + 0.9 * 110) * 1e-9)
    assert s["frames"] == 1


def test_spike_detection():
    assert spike_count(torch.tensor([0.0, 0.25, 1.0]), 4) == 5
    assert spike_count(torch.tensor([0.0, 0.3]), 4) is None
    assert spike_count(torch.tensor([0.0, 1.25]), 4) is None  # above the ceiling D
    assert spike_count(torch.tensor([-0.25]), 4) is None
    assert spike_count(torch.tensor([2.0, 3.0]), 1) is None


def test_per_block_tokens_and_pruning_cuts_block_ops():
    model = FakeModel(n_blocks=2).eval()
    x = tokens(b=1)
    with torch.no_grad(), count_ops(model, levels=4) as dense:
        model(x)
    d = dense.summary()
    assert [b["tokens"] for b in d["blocks"].values()] == [80, 80]
    apply_pruning(model, "0.5")
    with torch.no_grad(), count_ops(model, levels=4) as pruned:
        model(x)
        model(x)
    p = pruned.summary()
    assert p["frames"] == 2
    assert [b["tokens"] for b in p["blocks"].values()] == [40, 40]
    assert p["transformer_sops"] < 0.75 * d["transformer_sops"]
    assert p["transformer_sops"] == pytest.approx(sum(b["sops"] for b in p["blocks"].values()))


def _ones_conv_reference(x, w, stride, padding, dilation, groups, levels=4):
    """Accumulates by brute force: convolve the spike counts with an all-ones kernel per group."""
    counts = torch.round(x * levels)
    ones = torch.ones((groups, w.shape[1], *w.shape[2:]))
    recv = torch.nn.functional.conv2d(counts, ones, None, stride, padding, dilation, groups)
    return float(recv.sum()) * (w.shape[0] // groups)


@pytest.mark.parametrize(
    "kernel, stride, padding, dilation, groups",
    [(3, 1, 1, 1, 1), (3, 2, 1, 1, 1), (7, 2, 3, 1, 1), (5, 1, 2, 1, 4), (3, 1, 2, 2, 2), (1, 1, 0, 1, 1),
     (3, 1, "same", 1, 1), (3, 2, (0, 1), 1, 1)],
)
def test_conv_sops_equal_brute_force(kernel, stride, padding, dilation, groups):
    g = torch.Generator().manual_seed(kernel * 10 + stride)
    x = torch.randint(0, 5, (2, 8, 9, 11), generator=g).float() / 4
    x[x < 0.5] = 0  # sparse, like real spikes
    conv = nn.Conv2d(8, 12, kernel, stride, padding, dilation, groups, bias=False)
    with torch.no_grad(), count_ops(conv, levels=4) as c:
        conv(x)
    pad = padding if padding != "same" else kernel // 2 * dilation
    ref = _ones_conv_reference(x, conv.weight, stride, pad, dilation, groups)
    assert c.summary()["sops"] == pytest.approx(ref)
    assert c.summary()["macs"] == 0
