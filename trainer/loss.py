"""The SEMT loss: BCE on the B-scan logit plus alpha_j-weighted MSE per VF index.

The VF heads end in a sigmoid s in (0, 1); the clinical estimate is ``lo + (hi - lo) * s`` with
``lo``/``hi`` chosen from the training targets so the targets sit inside about [0.05, 0.95], away
from the sigmoid's flat ends. The squared error is taken in clinical units divided by the
training standard deviation of each index, so a unit of error costs the same for VFI (%) and MD
(dB) and the regression term is on the scale of the BCE (not ~1 % of it). ``alpha`` is keyed by
the VF index name; missing targets (NaN) do not count, and neither do missing labels (NaN: a
training volume whose glaucoma label is withheld still trains the VF heads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SemtLoss(nn.Module):
    def __init__(self, vf_names=(), alpha: dict[str, float] | None = None, scaling: dict | None = None,
                 std: dict[str, float] | None = None):
        super().__init__()
        alpha, scaling, std = alpha or {}, scaling or {}, std or {}
        self.vf_names = tuple(vf_names)
        self.register_buffer("alpha", torch.tensor([float(alpha.get(n, 1.0)) for n in self.vf_names]))
        self.register_buffer("lo", torch.tensor([float(scaling[n]["lo"]) for n in self.vf_names]))
        self.register_buffer("span", torch.tensor([float(scaling[n]["hi"] - scaling[n]["lo"]) for n in self.vf_names]))
        self.register_buffer("std", torch.tensor([max(float(std.get(n, 1.0)), 1e-6) for n in self.vf_names]))

    def forward(self, out: dict, label: torch.Tensor, vf: torch.Tensor | None = None) -> torch.Tensor:
        logit = out["logit"].float()
        if torch.isnan(label).any():  # the mean over the labelled B-scans only; 0 when there are none
            known = (~torch.isnan(label)).float()
            bce = F.binary_cross_entropy_with_logits(logit, torch.nan_to_num(label), reduction="none")
            loss = (bce * known).sum() / known.sum().clamp(min=1)
        else:
            loss = F.binary_cross_entropy_with_logits(logit, label)
        if vf is None or not self.vf_names or vf.shape[1] == 0:
            return loss
        mask = ~torch.isnan(vf)
        estimate = self.lo + self.span * out["vf"].float()
        err = ((estimate - torch.nan_to_num(vf)) / self.std) ** 2 * mask
        mse = err.sum(0) / mask.sum(0).clamp(min=1)
        return loss + (self.alpha * mse).sum()
