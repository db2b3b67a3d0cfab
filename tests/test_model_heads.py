"""The fused VF heads compute what the paper's three separate regression modules compute, and
files saved with separate heads load into them unchanged."""

import torch
from torch import nn

from octviewer.model import build_network


class SeparateHead(nn.Module):
    """The paper's regression module as it was written before fusion (same parameter names)."""

    def __init__(self, channels_in=512, channels=128):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(channels_in, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU())
        self.fc = nn.Linear(channels, 1)

    def forward(self, maps):
        m = self.convs(maps)
        return m, torch.sigmoid(self.fc(m.mean(dim=(2, 3))))[:, 0]


def test_fused_heads_equal_separate_heads_and_load_legacy_state():
    torch.manual_seed(0)
    net = build_network("semt", init="random", reg_channels=16).eval()
    heads = [SeparateHead(512, 16).eval() for _ in range(3)]
    for h in heads:  # non-trivial batch-norm statistics
        for bn in (h.convs[1], h.convs[4]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
    legacy = {k: v for k, v in net.state_dict().items() if not k.startswith("heads.")}
    for i, h in enumerate(heads):
        legacy.update({f"regressors.{i}.{k}": v for k, v in h.state_dict().items()})
    net.load_state_dict(legacy)  # old layout, converted by the load hook

    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = net(x)
        maps = net.backbone(x)
        sep = [h(maps) for h in heads]
        joint = torch.cat([maps] + [m for m, _ in sep], dim=1)
        logit = net.fc(joint.mean(dim=(2, 3)))[:, 0]
    torch.testing.assert_close(out["vf"], torch.stack([v for _, v in sep], dim=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["logit"], logit, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["cam"].mean(dim=(1, 2)), out["logit"], atol=1e-5, rtol=1e-5)


def test_heads_train_and_skip_the_cam_in_training():
    torch.manual_seed(0)
    net = build_network("mt", init="random", reg_channels=8).train()
    out = net(torch.randn(4, 3, 32, 32))
    assert out["cam"] is None and out["vf"].shape == (4, 3)
    (out["logit"].sum() + out["vf"].sum()).backward()
    assert net.heads.conv2.weight.grad is not None and net.heads.weight.grad.abs().sum() > 0
