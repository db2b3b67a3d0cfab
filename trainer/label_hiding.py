"""Which glaucoma labels a fit may see: the label-scarce regime's hidden labels.

A module of its own because ``trainer.train`` needs it and the label-scarce run
(``trainer.label_scarce``) drives ``train`` through the ablation: kept apart, neither imports the other.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np


def labelled_patients(records, fraction: float, seed: int) -> set[str]:
    """Training patients whose glaucoma label is used: ``ceil(fraction * n)`` of each class (a
    patient is glaucoma if any of their training volumes is), taken from one seeded order per
    class that does not depend on ``fraction``, so smaller labelled sets lie inside larger ones."""
    if not 0 < fraction <= 1:
        raise ValueError(f"label_fraction must be in (0, 1], got {fraction}")
    by_patient = defaultdict(int)
    for r in records:
        if r.split == "train":
            by_patient[r.patient_id] = max(by_patient[r.patient_id], int(r.label))
    rng = np.random.default_rng([int(seed), 0x1ABE1])  # not the split's generator: another order
    keep = set()
    for label in (1, 0):
        patients = sorted(p for p, lab in by_patient.items() if lab == label)
        order = rng.permutation(len(patients))
        keep.update(patients[k] for k in order[:math.ceil(fraction * len(patients))])
    return keep


def hidden_label_rows(records, fraction: float, seed: int) -> set[int]:
    """Manifest rows of the training volumes whose label a fit must not use (empty at fraction 1)."""
    if fraction == 1:
        return set()
    keep = labelled_patients(records, fraction, seed)
    return {r.row for r in records if r.split == "train" and r.patient_id not in keep}
