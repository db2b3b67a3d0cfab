"""The five systems of the SEMT paper's Table 1, each returning its class activation map for free.

Every network ends in global average pooling plus one linear layer for the glaucoma logit, so the
CAM is exact: the classifier's weights applied to the maps it pools, plus its bias, computed in the
same forward pass (Zhou et al., CVPR 2016). Each cell is the logit the network would give if every
cell looked like that one; their spatial mean *is* the logit, which the tests check.

``VARIANTS`` is the one list of architectures: the trainer, the model loader and the Predictor read
it (factory, 2D/3D, VF heads, training stages, default preprocessing, CAM geometry).

Forward output is a dict: ``logit`` (B,), ``vf`` (B, k) sigmoid-scaled VF indices (k may be 0),
``cam`` (B, h, w) or (B, d, h, w) for 3D, ``features`` (B, C) pooled backbone features (used by
the surrogate labelling).
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18
from torchvision.models.video import r3d_18


class InitError(RuntimeError):
    """ImageNet weights were asked for and cannot be had."""


def _imagenet_resnet18(init: str | Path | None) -> nn.Module:
    """ResNet18 with ImageNet weights from torchvision or a local file, or random when asked.

    ``init``: "imagenet" (torchvision's weights API: downloads once into the torch cache), a path
    to a local state-dict file, or "random" / None.
    """
    net = resnet18(weights=None)
    if init in (None, "random"):
        return net
    if init == "imagenet":
        from torchvision.models import ResNet18_Weights

        try:
            state = ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as exc:  # offline, proxy, corrupt cache
            raise InitError(
                "ImageNet weights for ResNet18 could not be obtained from torchvision "
                f"({type(exc).__name__}: {exc}). Offline, pass a local file "
                "(--init /path/resnet18-f37072fd.pth) or ask for random initialisation (--init random)."
            ) from exc
    else:
        path = Path(init)
        try:
            mode = path.stat().st_mode
        except OSError as exc:  # missing, or a folder on the way that cannot be entered
            raise InitError(f"ImageNet weights file {path}: {exc.strerror or 'cannot be read'}") from None
        if not stat.S_ISREG(mode):  # a FIFO was "not found" here, while the trainer's command named it (H67)
            from octviewer.core.files import file_kind

            raise InitError(f"ImageNet weights file {path}: this is {file_kind(mode)}, not a file")
        from .archive import torch_archive_problem

        # a deflated entry unpacks to whatever the file says before torch looks at it (attack run 4, F8)
        if problem := torch_archive_problem(path):
            raise InitError(f"ImageNet weights file {path.name}: {problem}")
        state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net


class Backbone2d(nn.Module):
    """ResNet18 up to its last feature map (512 x 7 x 7 for a 224 input)."""

    def __init__(self, init=None):
        super().__init__()
        net = _imagenet_resnet18(init)
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                                  net.layer4)

    def forward(self, x):
        return self.body(x)


def _cam(maps: torch.Tensor, fc: nn.Linear) -> torch.Tensor:
    """Cell logits: classifier weights (C,) applied to maps (B, C, ...) plus the bias -> (B, ...)."""
    return torch.einsum("bc...,c->b...", maps, fc.weight[0].to(maps.dtype)) + fc.bias[0].to(maps.dtype)


def _classify(joint: torch.Tensor, fc: nn.Linear, training: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logit, CAM) from the maps the classifier pools, in fp32 even under bf16 autocast: the few
    operations it costs keep the CAM's mean equal to the logit and the probability at fp32's
    resolution, where only the backbone's arithmetic is rounded."""
    with torch.autocast(joint.device.type, enabled=False):
        joint = joint.float()
        return fc(joint.mean(dim=(2, 3)))[:, 0], None if training else _cam(joint, fc)


class ResNet2d(nn.Module):
    """2D-ResNet: B-scan classifier (stage 1 of SEMT and the paper's baseline)."""

    def __init__(self, vf_names=(), init=None):
        super().__init__()
        self.vf_names = ()
        self.backbone = Backbone2d(init)
        self.fc = nn.Linear(512, 1)

    def forward(self, x):
        maps = self.backbone(x)
        logit, cam = _classify(maps, self.fc, self.training)
        pooled = maps.mean(dim=(2, 3))
        return {"logit": logit, "vf": pooled.new_zeros(len(x), 0), "cam": cam, "features": pooled}


class RegressionHeads(nn.Module):
    """The paper's k VF regression modules (each: two 3x3 conv + BN + ReLU on the backbone map, GAP,
    linear, sigmoid), computed together.

    The k first convs are one conv with their output channels concatenated, the k second convs one
    grouped conv (a group per head), the k linear layers one batched product: the same arithmetic
    as k separate modules, with a third of the kernels, and one wide GEMM instead of three narrow
    ones on the 7 x 7 maps, where the separate heads cost 45% of a training step on an H200.
    Head ``i`` owns channels ``i * channels .. (i + 1) * channels`` of every layer.
    """

    def __init__(self, k: int, channels_in=512, channels=128):
        super().__init__()
        self.k, self.channels = k, channels
        width = k * channels
        self.conv1 = nn.Conv2d(channels_in, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, groups=k, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.weight = nn.Parameter(torch.empty(k, channels))
        self.bias = nn.Parameter(torch.empty(k))
        bound = channels ** -0.5  # nn.Linear's default initialisation, per head
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, maps):
        m = torch.relu_(self.bn1(self.conv1(maps)))
        m = torch.relu_(self.bn2(self.conv2(m)))
        pooled = m.mean(dim=(2, 3)).view(-1, self.k, self.channels)
        vf = torch.sigmoid((pooled * self.weight.to(pooled.dtype)).sum(-1) + self.bias.to(pooled.dtype))
        return m, vf


_LEGACY_HEAD = {"convs.0.weight": "conv1.weight", "convs.3.weight": "conv2.weight",
                **{f"convs.1.{b}": f"bn1.{b}" for b in ("weight", "bias", "running_mean", "running_var")},
                **{f"convs.4.{b}": f"bn2.{b}" for b in ("weight", "bias", "running_mean", "running_var")},
                "fc.weight": "weight", "fc.bias": "bias"}


def upgrade_legacy_state(state: dict, prefix: str = "") -> dict:
    """Model files and checkpoints made before the heads were fused (``regressors.i.convs...``)
    -> ``heads.*``, by concatenating head i's tensors in order. In place; returns ``state``."""
    old = f"{prefix}regressors."
    if not any(k.startswith(old) for k in state):
        return state
    heads = sorted({int(k[len(old):].split(".")[0]) for k in state if k.startswith(old)})
    for src, dst in _LEGACY_HEAD.items():
        parts = [state.pop(f"{old}{i}.{src}") for i in heads if f"{old}{i}.{src}" in state]
        if parts:
            state[f"{prefix}heads.{dst}"] = torch.cat(parts)
    for bn in ("convs.1", "convs.4"):
        counters = [state.pop(f"{old}{i}.{bn}.num_batches_tracked") for i in heads
                    if f"{old}{i}.{bn}.num_batches_tracked" in state]
        if counters:
            state[f"{prefix}heads.bn{1 if bn == 'convs.1' else 2}.num_batches_tracked"] = counters[0]
    return state


class MultiTask2d(nn.Module):
    """2D-ResNet-MT / SEMT: the classifier sees backbone maps concatenated with the VF modules' maps."""

    def __init__(self, vf_names=("vfi", "md", "psd"), init=None, reg_channels=128):
        super().__init__()
        self.vf_names = tuple(vf_names)
        self.backbone = Backbone2d(init)
        self.heads = RegressionHeads(len(self.vf_names), 512, reg_channels) if self.vf_names else None
        self.fc = nn.Linear(512 + reg_channels * len(self.vf_names), 1)
        self._register_load_state_dict_pre_hook(lambda state, prefix, *_: upgrade_legacy_state(state, prefix))

    def forward(self, x):
        maps = self.backbone(x)
        if self.heads is not None:
            head_maps, vf = self.heads(maps)
            joint = torch.cat([maps, head_maps], dim=1)
        else:
            joint, vf = maps, maps.new_zeros(len(x), 0)
        logit, cam = _classify(joint, self.fc, self.training)
        return {"logit": logit, "vf": vf, "cam": cam, "features": maps.mean(dim=(2, 3))}


class Cnn3d(nn.Module):
    """Maetschke et al. (2019): five Conv3D(32) layers, kernels 7,5,3,3,3, strides 2,1,1,1,1, GAP, linear."""

    def __init__(self, vf_names=(), init=None, width=32):
        super().__init__()
        self.vf_names = ()
        layers, c_in = [], 1
        for k, s in zip((7, 5, 3, 3, 3), (2, 1, 1, 1, 1)):
            layers += [nn.Conv3d(c_in, width, k, stride=s, padding=k // 2, bias=False), nn.BatchNorm3d(width),
                       nn.ReLU(inplace=True)]
            c_in = width
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(width, 1)

    def forward(self, x):
        maps = self.body(x)
        pooled = maps.mean(dim=(2, 3, 4))
        return {"logit": self.fc(pooled)[:, 0], "vf": pooled.new_zeros(len(x), 0),
                "cam": None if self.training else _cam(maps, self.fc), "features": pooled}


class ResNet3d(nn.Module):
    """torchvision r3d_18 with a one-channel stem (random initialisation: no 1-channel weights exist)."""

    def __init__(self, vf_names=(), init=None):
        super().__init__()
        self.vf_names = ()
        net = r3d_18(weights=None)
        net.stem[0] = nn.Conv3d(1, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False)
        self.body = nn.Sequential(net.stem, net.layer1, net.layer2, net.layer3, net.layer4)
        self.fc = nn.Linear(512, 1)

    def forward(self, x):
        maps = self.body(x)
        pooled = maps.mean(dim=(2, 3, 4))
        return {"logit": self.fc(pooled)[:, 0], "vf": pooled.new_zeros(len(x), 0),
                "cam": None if self.training else _cam(maps, self.fc), "features": pooled}


def _default_preprocess_2d():
    from .preprocess import Preprocess
    return Preprocess()


def _default_preprocess_3d():
    from .preprocess import Preprocess
    return Preprocess(name="volume_area_v1")


@dataclass(frozen=True)
class Variant:
    """One Table 1 system: how to build it and what the rest of the program needs to know about it.

    ``params``: the network parameters a model file may set, with inclusive bounds (checked before
    anything is allocated). ``cam_stride`` / ``cam_offset``: input px between feature cells and of
    cell 0's receptive-field centre, per spatial axis of the CAM (see ``cam.py``).
    """

    factory: Callable[..., nn.Module]
    is_3d: bool
    has_vf: bool
    stages: int
    default_preprocess: Callable
    cam_stride: tuple[int, ...]
    cam_offset: tuple[float, ...]
    params: dict[str, tuple[int, int]] = field(default_factory=dict)


VARIANTS: dict[str, Variant] = {
    "resnet2d": Variant(lambda vf_names=(), init=None: ResNet2d(init=init), False, False, 1,
                        _default_preprocess_2d, (32, 32), (0.0, 0.0)),
    "mt": Variant(lambda vf_names=("vfi", "md", "psd"), init=None, **p: MultiTask2d(vf_names, init=init, **p),
                  False, True, 1, _default_preprocess_2d, (32, 32), (0.0, 0.0), {"reg_channels": (1, 1024)}),
    "semt": Variant(lambda vf_names=("vfi", "md", "psd"), init=None, **p: MultiTask2d(vf_names, init=init, **p),
                    False, True, 2, _default_preprocess_2d, (32, 32), (0.0, 0.0), {"reg_channels": (1, 1024)}),
    "cnn3d": Variant(lambda vf_names=(), init=None, **p: Cnn3d(**p), True, False, 1, _default_preprocess_3d,
                     (2, 2, 2), (0.0, 0.0, 0.0), {"width": (1, 256)}),
    "resnet3d": Variant(lambda vf_names=(), init=None: ResNet3d(), True, False, 1, _default_preprocess_3d,
                        (8, 16, 16), (0.0, 0.0, 0.0)),
}
ARCHITECTURES = tuple(VARIANTS)


def build_network(architecture: str, vf_names=("vfi", "md", "psd"), init=None, **params) -> nn.Module:
    """The network for a Table 1 system by name. ``mt`` and ``semt`` share one network."""
    if architecture not in VARIANTS:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {', '.join(ARCHITECTURES)}")
    return VARIANTS[architecture].factory(vf_names=vf_names, init=init, **params)


def is_3d(architecture: str) -> bool:
    return VARIANTS[architecture].is_3d
