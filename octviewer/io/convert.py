"""Reducing what files hold to what the viewer draws: one grey image per B-scan and localizer.

A reader that hands on a colour or 3-D localizer makes every repaint fail later, far from the
file; reducing (or refusing) here keeps the problem at load time, with the file's name on it.
"""

from __future__ import annotations

import numpy as np

from .errors import VolumeReadError
from .limits import MAX_AXIS

#: ITU-R BT.601 luma weights, the grey that image libraries (OpenCV, Pillow) compute.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if hi <= lo:
        return np.zeros(values.shape, np.uint8)
    return np.clip((values - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255).astype(np.uint8)


def grey_localizer(path, image) -> np.ndarray:
    """A 2-D uint8 localizer from a grey, single-channel or RGB(A) array; anything else is refused."""
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise VolumeReadError(path, f"the localizer image has unsupported pixel type {image.dtype}")
    if image.ndim == 3 and 1 in (image.shape[0], image.shape[-1]):
        image = image.reshape(image.shape[1:] if image.shape[0] == 1 else image.shape[:-1])
    elif image.ndim == 3 and image.shape[-1] in (3, 4):
        image = _to_uint8(image[..., :3]).astype(np.float32) @ _LUMA
        image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    if image.ndim != 2 or min(image.shape) < 1 or max(image.shape) > MAX_AXIS:
        raise VolumeReadError(path, f"the localizer image has shape {image.shape}; a 2-D grey or colour image "
                                    "is expected")
    return np.ascontiguousarray(_to_uint8(image))


def grey_stack(path, data: np.ndarray) -> np.ndarray:
    """(n, rows, cols, 3|4) colour B-scans as (n, rows, cols) grey of the same dtype."""
    if data.ndim != 4 or data.shape[-1] not in (3, 4):
        raise VolumeReadError(path, f"colour image data of shape {data.shape} is not a stack of B-scans")
    grey = data[..., :3].astype(np.float32) @ _LUMA
    if data.dtype.kind in "ui":
        info = np.iinfo(data.dtype)
        return np.clip(grey + 0.5, info.min, info.max).astype(data.dtype)
    return grey.astype(data.dtype)
