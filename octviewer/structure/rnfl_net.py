"""A learned cost for the RNFL outer boundary: a tiny convolutional net, run in numpy.

Why: on single-frame (not averaged) B-scans the RNFL/GCL step is lost in the speckle and a stronger
step, the GCL/IPL's into the INL, lies below it; every edge rule tried chose one or the other
(docs/structure.md). A person tracing such a B-scan reads the layer stack as a whole: the INL's dark
band and the GCL+IPL above it, the RNFL thinning away from the disc. A small net with a wide view
(0.5 mm in depth, 4 mm along the B-scan) can learn that from synthetic B-scans whose true boundaries
are known, and gives, per A-scan, a probability over depth for the boundary; its negative logarithm
is the cost the existing shortest-path search follows, so the boundary keeps the path's continuity.

The net is trained on SYNTHETIC B-scans of the project's generator (Cirrus look), by
``python -m trainer.rnfl_boundary`` (fixed seed), and since session 16 fine-tuned with one real traced
Cirrus B-scan mixed in (``--real-tracing``; docs/structure.md, "Session 16"); the weights ship as
``resources/models/rnfl_boundary.safetensors`` (read without executing code). Inference is plain numpy (no torch in
the structure package): dilated 3x3 convolutions as one matrix product per layer.

Geometry, the same on every device: each B-scan is resampled under our ILM, ``ROWS`` samples
``SAMPLE_UM`` apart starting ``ABOVE`` samples above it (each sample the mean over its depth), and
averaged along the B-scan to columns ``COLUMN_UM`` apart. Grey levels are put on the B-scan's own
scale (0 = background, 1 = the RNFL just under the ILM), so no device table is needed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

SAMPLE_UM = 8.0  # depth between samples of the band under the ILM
COLUMN_UM = 60.0  # distance between the net's columns along the B-scan
ABOVE, ROWS = 4, 80  # the band: 32 um above the ILM to 600 um below it
DEPTH_SCALE_UM = 500.0  # position channels: depth below the ILM and above Bruch's membrane, in this unit
REF_UM = (8.0, 32.0)  # the RNFL's brightness is read this far under the ILM
MODEL_NAME = "rnfl_boundary.safetensors"


def model_path() -> Path:
    from ..resources import RESOURCES

    return RESOURCES / "models" / MODEL_NAME


def columns(width: int, um_x: float) -> tuple[np.ndarray, int, np.ndarray]:
    """The net's columns along a B-scan of ``width`` A-scans ``um_x`` apart: the A-scan each is read at
    (after a box mean of ``size`` A-scans, scipy's ``uniform_filter1d``), ``size``, and the position
    (fractional A-scan index) of the A-scans it averages (an even box ends at the A-scan read)."""
    cols = max(1, int(round(width / (COLUMN_UM / um_x))))
    nominal = (np.arange(cols) + 0.5) * (width / cols) - 0.5
    pick = np.clip(np.round(nominal).astype(np.intp), 0, width - 1)
    size = max(1, int(round(width / cols)))
    return pick, size, (pick - 0.5 * (1 - size % 2)).astype(np.float32)


def band(display: np.ndarray, ilm: np.ndarray, bm: np.ndarray, um_z: float, um_x: float,
         periodic: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The net's input and where its columns lie.

    ``display`` (n, depth, width) grey values, ``ilm`` / ``bm`` (n, width) depths in px (finite).
    Returns (x, columns, ilm_col): x (n, 3, ROWS, cols) float32 (grey, depth under the ILM, height
    above Bruch's membrane), the A-scan position (fractional index) of each column's centre, and
    the ILM (px) averaged over each column.
    """
    n, depth, width = display.shape
    step_px = SAMPLE_UM / um_z
    k = max(1, int(round(step_px)))
    z = ilm[:, None, :] + ((np.arange(ROWS, dtype=np.float32) - ABOVE) * step_px)[None, :, None]
    base = np.clip(np.round(z - (k - 1) / 2.0).astype(np.intp), 0, depth - 1)
    flat = np.zeros(base.shape, np.float32)
    for j in range(k):  # mean over the sample's depth, read only where sampled
        flat += np.take_along_axis(display, np.minimum(base + j, depth - 1), 1)
    flat *= 1.0 / k
    # along the B-scan: box mean over a column's width, read at the column centres
    pick, size, centres = columns(width, um_x)
    mode = "wrap" if periodic else "nearest"
    if size > 1:
        flat = ndimage.uniform_filter1d(flat, size, axis=2, mode=mode)
        ilm_m = ndimage.uniform_filter1d(ilm.astype(np.float32), size, axis=1, mode=mode)
        bm_m = ndimage.uniform_filter1d(bm.astype(np.float32), size, axis=1, mode=mode)
    else:
        ilm_m, bm_m = ilm.astype(np.float32), bm.astype(np.float32)
    flat, ilm_c, bm_c = flat[:, :, pick], ilm_m[:, pick], bm_m[:, pick]
    # grey scale: background (the B-scan's median: most of a B-scan is vitreous or below the retina) = 0,
    # the RNFL just under the ILM (median over the B-scan) = 1
    background = np.median(display.reshape(n, -1)[:, :: max(1, depth * width // 20000)], axis=1)[:, None, None]
    r0, r1 = ABOVE + int(round(REF_UM[0] / SAMPLE_UM)), ABOVE + int(round(REF_UM[1] / SAMPLE_UM))
    ref = np.median(flat[:, r0:r1 + 1, :].mean(axis=1), axis=1)[:, None, None]
    grey = (flat - background) / np.maximum(ref - background, 1.0)
    under = ((np.arange(ROWS, dtype=np.float32) - ABOVE) * SAMPLE_UM / DEPTH_SCALE_UM)[None, :, None]
    above_bm = ((bm_c - ilm_c) * um_z / DEPTH_SCALE_UM)[:, None, :] - under
    x = np.stack([grey, np.broadcast_to(under, grey.shape), np.clip(above_bm, -1.0, 1.0)], axis=1)
    return x.astype(np.float32), centres, ilm_c


@functools.lru_cache(maxsize=2)
def load(path: str | None = None) -> tuple[list[tuple[np.ndarray, np.ndarray, int]], dict]:
    """The layers (weight (out, in, 3, 3) or (out, in, 1, 1), bias, dilation) and the file's metadata."""
    from safetensors import SafetensorError, safe_open

    path = str(path or model_path())
    if not Path(path).is_file():
        raise FileNotFoundError(f"{Path(path).name}: the RNFL boundary model is missing")
    try:
        with safe_open(path, framework="numpy") as f:
            meta = dict(f.metadata() or {})
            arch = json.loads(meta.get("layers", "[]"))
            layers = [(f.get_tensor(f"{i}.weight").astype(np.float32), f.get_tensor(f"{i}.bias").astype(np.float32),
                       int(d)) for i, d in enumerate(arch)]
    except (SafetensorError, ValueError, OSError) as error:
        raise ValueError(f"{Path(path).name}: not a readable RNFL boundary model ({error})") from error
    if not layers:
        raise ValueError(f"{Path(path).name}: not an RNFL boundary model (no 'layers' in its metadata)")
    return layers, meta


def _conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, dilation: int) -> np.ndarray:
    """Convolution, zero padding in depth and none along the B-scan ('valid': ``2 * dilation`` columns
    fewer out than in); x (n, rows, cols, in) channels last -> (n, rows, cols - 2 * dilation, out)."""
    n, h, w, c = x.shape
    out_c, _, kh, kw = weight.shape
    if kh == 1:
        return x @ weight[:, :, 0, 0].T + bias
    d = dilation
    w -= 2 * d
    pad = np.zeros((n, h + 2 * d, w + 2 * d, c), np.float32)
    pad[:, d:d + h] = x
    cols = np.empty((n, h, w, 9 * c), np.float32)
    for i in range(3):
        for j in range(3):
            cols[..., (3 * i + j) * c:(3 * i + j + 1) * c] = pad[:, i * d:i * d + h, j * d:j * d + w]
    wmat = weight.transpose(2, 3, 1, 0).reshape(9 * c, out_c)  # (kh, kw, in) x out, as cols is laid out
    return cols @ wmat + bias


def reach(layers) -> int:
    """How many columns either side the net sees (the sum of its 3x3 layers' dilations)."""
    return int(sum(d for weight, _, d in layers if weight.shape[-1] == 3))


def pad_columns(x: np.ndarray, k: int, periodic: bool) -> np.ndarray:
    """x (..., cols) with ``k`` columns added either side: a line B-scan continued as its mirror image, a
    circle scan wrapped round. Why: with the convolutions' zero padding the net saw where the B-scan
    ends, and every generated cube has its disc at the centre, so the net had learnt "near an end" as
    "thin RNFL" (the first 0.9 mm of a real Cirrus B-scan read 40-50 um thin); a circle's seam read as
    two ends (docs/structure.md, "Third session")."""
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(k, k)], mode="wrap" if periodic else "symmetric")


def logits(x: np.ndarray, layers, chunk: int = 1, periodic: bool = False) -> np.ndarray:
    """The net on x (n, 3, rows, cols): the RNFL boundary's logits per sample, (n, rows, cols).
    The B-scan is continued past its ends as far as the net sees (``pad_columns``); each layer is then
    computed only on the columns the next one reads (``_conv``), so no column sees zero padding."""
    x = pad_columns(x, reach(layers), periodic)
    out = []
    for s in range(0, x.shape[0], chunk):
        h = np.ascontiguousarray(x[s:s + chunk].transpose(0, 2, 3, 1))
        for i, (weight, bias, dilation) in enumerate(layers):
            if i == len(layers) - 1:
                weight, bias = weight[:1], bias[:1]  # the RNFL boundary; the other outputs only helped training
            h = _conv(h, weight, bias, dilation)
            if i < len(layers) - 1:
                np.maximum(h, 0.0, out=h)
        out.append(h[..., 0])
    return np.concatenate(out, axis=0)


def cost(lg: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    """Per column, minus the log probability of the boundary at each depth (softmax over depth)."""
    lg = lg - lg.max(axis=1, keepdims=True)
    p = np.exp(lg)
    p /= p.sum(axis=1, keepdims=True)
    return -np.log(np.maximum(p, floor)).astype(np.float32), p


def subsample(p: np.ndarray, path: np.ndarray, reach: int = 2) -> np.ndarray:
    """The boundary between samples: the probability-weighted mean depth within ``reach`` of the path."""
    n, rows, cols = p.shape
    offsets = np.arange(-reach, reach + 1)
    rr = np.clip(path[:, None, :] + offsets[None, :, None], 0, rows - 1)
    w = np.take_along_axis(p, rr, 1)
    return (w * rr).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12)


def spread(p: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """How far the net itself expects the boundary to lie from ``rows`` (n, cols), in band samples: the mean
    absolute distance under its probability over depth. A column whose probability is split between the
    RNFL/GCL step and a step below it, or smeared over both, reads far; one sure of a single depth reads near."""
    r = np.arange(p.shape[1], dtype=np.float32)[None, :, None]
    return (p * np.abs(r - rows[:, None, :])).sum(axis=1)


def per_ascan(values: np.ndarray, centres: np.ndarray, width: int, periodic: bool) -> np.ndarray:
    """Values per column (n, cols) -> per A-scan (n, width), linearly between the columns' centres."""
    x = np.arange(width, dtype=np.float64)
    return np.stack([np.interp(x, centres, t, period=width if periodic else None) for t in values]).astype(
        np.float32)


def thickness_px(rows: np.ndarray, centres: np.ndarray, width: int, um_z: float, periodic: bool) -> np.ndarray:
    """Boundary rows of the band (n, cols) -> depth under the ILM per A-scan (n, width), in px."""
    return per_ascan((rows - ABOVE) * (SAMPLE_UM / um_z), centres, width, periodic)


def speckle(display: np.ndarray, ilm: np.ndarray, um_z: float) -> float:
    """How speckled the B-scans are: the grey-level noise between neighbouring A-scans just under the
    ILM (in the RNFL) over the RNFL's brightness above the background. About 0.07 on averaged
    Spectralis circles, 0.3 on single-frame Cirrus B-scans (and the generator's Cirrus look)."""
    n, depth, width = display.shape
    if width < 8:
        return float("nan")
    rows = np.arange(int(round(REF_UM[0] / um_z)), int(round(REF_UM[1] / um_z)) + 1)
    zz = np.clip(np.round(ilm).astype(np.intp)[:, None, :] + rows[None, :, None], 0, depth - 1)
    rnfl = np.take_along_axis(display, zz, 1).astype(np.float32)
    noise = float(np.median(np.abs(np.diff(rnfl, axis=2)))) / 0.6745 / np.sqrt(2.0)
    background = float(np.median(display[:: max(1, n // 16), ::4, ::4]))
    return noise / max(float(np.median(rnfl)) - background, 1.0)
