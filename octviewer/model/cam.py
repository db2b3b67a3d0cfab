"""Class activation maps from feature cells to B-scan pixels, and their one colour scale.

Importable without torch (NumPy only), so the viewer, the report and ``octviewer-predict`` share
one mapping and one colour scale.

**Where a feature cell looks.** Every network ends in convolutions whose output cell ``j`` is
centred on input pixel ``stride * j + offset`` (pixel-index coordinates, pixel ``u`` covering
``[u, u + 1)``). For ResNet18's layer 4 the composition of its layers gives exactly this with
stride 32 and offset 0: conv1 (7x7, stride 2, pad 3) centres output ``i`` on ``2i``; max-pool
(3x3, 2, 1) on ``2i``; each stride-2 stage's 3x3/pad-1 conv and its 1x1 shortcut on ``2i``; the
stride-1 convs keep the centre. So the 7 x 7 map of a 224 px input has cells at 0, 32, ..., 192,
and the 4 x 4 map of a 112 px input at 0, 32, 64, 96: *not* at ``(j + 0.5) * 224 / 7`` as an
image resize assumes (that is half a cell, 15.5 px, too far right and down; at 112 px the
resize's 28 px "cells" drift further). ``tests/test_model_cam.py`` checks each cell against a
receptive-field probe (the peak of the input gradient of that one cell): interior cells peak
within a few pixels of ``32 j``; cells whose receptive field the image border cuts peak a little
inward of it, which the linear interpolation between cell centres approximates.

The 3D networks follow the same rule with their own strides (``networks.VARIANTS``): the 3D CNN
2 on every axis, the 3D ResNet 8 along B-scans and 16 in depth and width, offset 0.

**Between cells** the map is interpolated linearly between cell centres and held constant beyond
the first and last centre (no extrapolation past what a cell measured). The mapping is a product
of two small matrices, so an en-face row (the depth-mean of a mapped B-scan CAM) is exact and cheap.

**Colour.** Cell values are logits. The network's cells average to its B-scan logit (each is
the logit the network would give if every cell looked like that one); the Predictor then maps them
with the model file's calibration (an affine map of logits) and subtracts logit(threshold), so a
``Prediction``'s cells average to ``logit(p_bscan) - logit(threshold)``: 0 is the decision
threshold, positive (red) speaks for glaucoma and negative (blue) for normal. They are drawn with
a diverging map centred at 0 on a fixed symmetric scale ``-CAM_LIMIT .. +CAM_LIMIT`` (never
per-volume min-max, which would make a normal eye's least-negative region look "hot").
"""

from __future__ import annotations

import numpy as np

#: Stride and offset (input px) of the 2D networks' last feature map (ResNet18 layer 4).
FEATURE_STRIDE = 32
FEATURE_OFFSET = 0.0

#: Fixed colour scale of every CAM display, in logit units: -CAM_LIMIT is full blue, 0 white,
#: +CAM_LIMIT full red; values beyond saturate. 4 logits is an odds factor of e^4 ~ 55 for a cell.
CAM_LIMIT = 4.0

#: Name of the diverging colormap (blue-white-red, perceptually uniform; pyqtgraph and colorcet
#: ship it under this name). ``CAM_LUT`` is the same map as 256 RGB entries for code without them.
CAM_COLORMAP = "CET-D1"

_CET_D1_ANCHORS = np.array([
    (0.128, 0.316, 0.858), (0.321, 0.386, 0.872), (0.440, 0.460, 0.885), (0.540, 0.535, 0.897),
    (0.629, 0.613, 0.908), (0.712, 0.693, 0.918), (0.791, 0.774, 0.928), (0.867, 0.857, 0.936),
    (0.932, 0.907, 0.915), (0.948, 0.843, 0.817), (0.943, 0.746, 0.697), (0.929, 0.648, 0.580),
    (0.907, 0.550, 0.466), (0.878, 0.450, 0.355), (0.842, 0.344, 0.248), (0.800, 0.224, 0.142),
    (0.752, 0.008, 0.022)])

#: (256, 3) uint8 lookup table of CAM_COLORMAP; entry 0 is -CAM_LIMIT, 255 is +CAM_LIMIT.
CAM_LUT = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_CET_D1_ANCHORS)), _CET_D1_ANCHORS[:, c])
                    for c in range(3)], axis=1).__mul__(255).round().astype(np.uint8)


def cam_rgb(cam: np.ndarray, limit: float = CAM_LIMIT) -> np.ndarray:
    """CAM values (logits) -> (..., 3) uint8 RGB on the fixed scale; NaN (not analysed) -> white."""
    cam = np.asarray(cam, np.float32)
    idx = np.clip((np.nan_to_num(cam, nan=0.0) / limit + 1.0) * 127.5, 0, 255).round().astype(np.intp)
    return CAM_LUT[idx]


def _pair(v) -> tuple:
    return tuple(v) if np.ndim(v) else (v, v)


def cell_weights(n_cells: int, out_len: int, input_len: int, stride: float = FEATURE_STRIDE,
                 offset: float = FEATURE_OFFSET) -> np.ndarray:
    """(out_len, n_cells) float32 interpolation weights along one axis; each row sums to 1.

    Output pixel ``x`` of an axis of ``out_len`` pixels that was resized to ``input_len`` network
    input pixels (bilinear, half-pixel centres) lies at input pixel ``u = (x + 0.5) * input_len /
    out_len - 0.5``, i.e. at fractional cell ``(u - offset) / stride``, clamped to the first and
    last cell centre.
    """
    if n_cells < 1 or out_len < 1 or input_len < 1 or stride <= 0:
        raise ValueError(f"bad CAM geometry: {n_cells} cells, {out_len} px, input {input_len} px, stride {stride}")
    u = (np.arange(out_len, dtype=np.float64) + 0.5) * (input_len / out_len) - 0.5
    f = np.clip((u - offset) / stride, 0.0, n_cells - 1)
    left = np.floor(f).astype(np.intp)
    right = np.minimum(left + 1, n_cells - 1)
    t = f - left
    w = np.zeros((out_len, n_cells), np.float64)
    rows = np.arange(out_len)
    np.add.at(w, (rows, left), 1.0 - t)
    np.add.at(w, (rows, right), t)
    return w.astype(np.float32)


def cell_centres(n_cells: int, out_len: int, input_len: int, stride: float = FEATURE_STRIDE,
                 offset: float = FEATURE_OFFSET) -> np.ndarray:
    """Where each cell's receptive-field centre falls on an axis of ``out_len`` pixels (pixel index)."""
    u = stride * np.arange(n_cells) + offset
    return (u + 0.5) * (out_len / input_len) - 0.5


def cam_to_bscan(cam_cells: np.ndarray, bscan_shape: tuple[int, int], input_size, *,
                 stride=FEATURE_STRIDE, offset=FEATURE_OFFSET) -> np.ndarray:
    """One B-scan's CAM cells (h, w) -> (depth, width) float32 on the B-scan's pixel grid.

    ``input_size``: the network input the cells came from (an int for square inputs or
    ``(height, width)``); ``stride`` / ``offset`` likewise per axis (defaults: the 2D networks).
    """
    cells = np.asarray(cam_cells, np.float32)
    if cells.ndim != 2:
        raise ValueError(f"CAM cells must be 2-D (h, w), got shape {cells.shape}")
    (in_h, in_w), (s_h, s_w), (o_h, o_w) = _pair(input_size), _pair(stride), _pair(offset)
    depth, width = bscan_shape
    rows = cell_weights(cells.shape[0], depth, in_h, s_h, o_h)
    cols = cell_weights(cells.shape[1], width, in_w, s_w, o_w)
    return (rows @ cells @ cols.T).astype(np.float32)


def enface_cam(prediction, volume) -> np.ndarray:
    """(n_bscans, width) float32: each B-scan's mapped CAM averaged over depth, on the volume's grid.

    Exact (the depth-mean of ``cam_to_bscan``) but computed from the cells: the depth weights are
    averaged once. B-scans not analysed yet (NaN cells) give NaN rows.
    """
    cam = np.asarray(prediction.cam, np.float32)
    n, depth, width = volume.shape
    if cam.ndim != 3 or cam.shape[0] != n:
        raise ValueError(f"the prediction's CAM {cam.shape} does not belong to a volume of {n} B-scans")
    (in_h, in_w), (s_h, s_w), (o_h, o_w) = (_pair(prediction.cam_input_size), _pair(prediction.cam_stride),
                                            _pair(prediction.cam_offset))
    depth_w = cell_weights(cam.shape[1], depth, in_h, s_h, o_h).mean(axis=0)  # (h,)
    cols = cell_weights(cam.shape[2], width, in_w, s_w, o_w)  # (width, w)
    rows = np.einsum("nhw,h->nw", cam, depth_w)
    return (rows @ cols.T).astype(np.float32)


def pointing_game(enface: np.ndarray, region: np.ndarray, spacing_mm: tuple[float, float],
                  tolerance_mm: float = 0.5) -> bool:
    """Does the en-face CAM's peak fall within ``tolerance_mm`` of a recorded damage region?

    ``enface``: (n_bscans, width) from ``enface_cam``; ``region``: boolean mask on the same grid;
    ``spacing_mm``: (between B-scans, between A-scans). The distance is physical (anisotropic
    grids are common: 0.03 mm between B-scans, 0.006 mm between A-scans on a Cirrus cube), which
    is the same as dilating the region by ``tolerance_mm`` with an ellipse. NaN rows are ignored.
    """
    enface = np.asarray(enface, np.float64)
    region = np.asarray(region, bool)
    if enface.shape != region.shape:
        raise ValueError(f"en-face CAM {enface.shape} and region {region.shape} are on different grids")
    if not region.any() or not np.isfinite(enface).any():
        return False
    r, c = np.unravel_index(np.nanargmax(enface), enface.shape)
    rows, cols = np.nonzero(region)
    d2 = ((rows - r) * spacing_mm[0]) ** 2 + ((cols - c) * spacing_mm[1]) ** 2
    return bool(d2.min() <= tolerance_mm ** 2)
