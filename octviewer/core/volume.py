"""The in-memory OCT volume every layer agrees on.

Qt-free and torch-free on purpose: readers produce it, the model consumes it, the viewer draws it,
and a GPU server without Qt can still import it.

Axes follow eyepy's convention, ``data[bscan, depth, ascan]``: B-scans run from the first acquired
(superior for a Cirrus/Spectralis raster) to the last; depth runs from the vitreous down; A-scans
run left to right as the device displays them.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass, field

import numpy as np

SCAN_PATTERNS = ("volume", "line", "circle", "radial")
LATERALITIES = ("OD", "OS")


#: What one OCT pixel can measure, in mm, per axis of ``Spacing``. An optic-disc OCT's depth pixel is
#: 2-8 µm (Cirrus 2, Topcon 2.6, Spectralis 3.9, older time-domain ~8), its A-scans 5-50 µm apart
#: (a 6-12 mm scan of 128-1536 A-scans), its B-scans 0.01-1.5 mm apart (a cube to a sparse raster).
#: The bounds leave room for binned or resampled exports, and refuse what no OCT is: a spacing scaled
#: by 1e-4 or by 100 (0.6 mm deep pixels) passed the old "0 to 100 mm" check and then broke the
#: quality gate and the measurement with IndexError/ValueError (attack run 3, F30).
OCT_SPACING_MM = {"bscan_mm": (0.001, 5.0), "depth_mm": (0.0005, 0.1), "ascan_mm": (0.001, 0.2)}


def oct_spacing_problem(axis: str, mm: float | None) -> str:
    """Why ``mm`` cannot be the ``axis`` spacing of an OCT (see ``OCT_SPACING_MM``), or ""."""
    if mm is None or (axis == "bscan_mm" and mm == 0):
        return ""
    lo, hi = OCT_SPACING_MM[axis]
    if lo <= mm <= hi:
        return ""
    what = {"bscan_mm": "between B-scans", "depth_mm": "per pixel in depth", "ascan_mm": "between A-scans"}[axis]
    return f"{mm * 1000:.3g} µm {what}, where an OCT's is {lo * 1000:g}-{hi * 1000:g} µm"


@dataclass(frozen=True)
class Spacing:
    """Voxel size in millimetres; ``None`` means the file does not say.

    Unknown spacing is kept explicit rather than guessed, because a made-up micrometre scale bar
    on a clinical image is worse than none.
    """

    bscan_mm: float | None = None  # between B-scans (0 for a single B-scan)
    depth_mm: float | None = None  # axial, per pixel
    ascan_mm: float | None = None  # lateral, between A-scans

    def __post_init__(self):
        # A spacing is a finite number or None: "nan mm" or a string in a scale bar is never shown.
        for name in ("bscan_mm", "depth_mm", "ascan_mm"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"spacing {name} must be a number or None, got {type(value).__name__}")
            value = float(value)
            if not math.isfinite(value) or value < 0 or (value == 0 and name != "bscan_mm"):
                raise ValueError(f"spacing {name} must be finite and positive, got {value!r}")
            object.__setattr__(self, name, value)

    @property
    def known(self) -> bool:
        return self.depth_mm is not None and self.ascan_mm is not None

    def problem(self) -> str:
        """Why these distances cannot be an OCT's (the first axis out of range), or ""."""
        return next((p for axis in OCT_SPACING_MM if (p := oct_spacing_problem(axis, getattr(self, axis)))), "")

    def as_tuple(self) -> tuple[float | None, float | None, float | None]:
        return (self.bscan_mm, self.depth_mm, self.ascan_mm)


@dataclass(frozen=True)
class BscanPosition:
    """Where a B-scan lies on the localizer, in localizer pixel coordinates (x, y).

    A line or raster B-scan runs from ``start`` to ``end``; a circle scan has ``center`` and
    ``radius`` instead (start == end on the circle).
    """

    start: tuple[float, float]
    end: tuple[float, float]
    center: tuple[float, float] | None = None
    radius: float | None = None


@dataclass(frozen=True)
class Localizer:
    """The en-face image (SLO/IR/fundus) acquired with the volume, and its pixel size in mm."""

    image: np.ndarray  # (rows, cols) uint8
    spacing_mm: tuple[float | None, float | None] = (None, None)  # (row, col)

    def __post_init__(self):
        # The viewer draws the localizer as one grey image: a colour or 3-D array is reduced by
        # the reader, never handed on (it made every repaint raise).
        if not isinstance(self.image, np.ndarray) or self.image.ndim != 2 or min(self.image.shape) < 1:
            shape = getattr(self.image, "shape", None)
            raise ValueError(f"the localizer must be a 2-D grey image, got shape {shape}")
        if len(self.spacing_mm) != 2:
            raise ValueError(f"localizer spacing must be (row_mm, col_mm), got {self.spacing_mm!r}")
        for value in self.spacing_mm:
            if value is not None and (isinstance(value, (bool, str)) or not math.isfinite(float(value))
                                      or float(value) <= 0):
                raise ValueError(f"localizer spacing must be finite and positive or None, got {value!r}")


def _to_uint8_linear(data: np.ndarray) -> np.ndarray:
    if data.dtype == np.uint8:
        return data
    lo, hi = float(np.min(data)), float(np.max(data))
    if hi <= lo:
        return np.zeros(data.shape, np.uint8)
    scaled = (data.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


def _to_uint8_heidelberg(data: np.ndarray) -> np.ndarray:
    """Spectralis raw reflectivity is linear; Heyex shows its fourth root (as eyepy does)."""
    d = np.nan_to_num(data.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    d[d > 1e30] = 0.0  # the format's marker for "no data"
    return np.clip(np.power(np.clip(d, 0, None), 0.25) * 255.0 + 0.5, 0, 255).astype(np.uint8)


#: Named transforms from stored intensities to 8-bit display values. The name travels with the
#: volume so that the viewer and the network see the same picture.
INTENSITY_TRANSFORMS = {
    "identity": _to_uint8_linear,  # uint8 data shown as stored; other dtypes min-max scaled
    "heidelberg_vol": _to_uint8_heidelberg,
}


@dataclass(frozen=True)
class OctVolume:
    """One OCT acquisition: a stack of B-scans plus what a reader needs to interpret them.

    ``patient_id`` is carried for reports but deliberately excluded from ``repr`` so it never
    reaches a log by accident.
    """

    data: np.ndarray = field(repr=False)  # (n_bscans, depth, width)
    spacing: Spacing = Spacing()
    laterality: str | None = None  # "OD" / "OS" / None when unknown
    scan_pattern: str = "volume"
    device: str = ""
    acquired: _dt.datetime | _dt.date | None = None
    patient_id: str | None = field(default=None, repr=False)
    localizer: Localizer | None = field(default=None, repr=False)
    bscan_positions: tuple[BscanPosition, ...] | None = field(default=None, repr=False)
    layers: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # name -> (n, width)
    intensity_transform: str = "identity"
    source: str = ""  # file the volume came from, for messages
    notes: tuple[str, ...] = ()  # caveats for the reader, e.g. "no physical spacing in file"

    def __repr__(self):
        return (f"OctVolume(shape={self.shape}, dtype={self.data.dtype}, spacing={self.spacing}, "
                f"laterality={self.laterality}, scan_pattern={self.scan_pattern!r}, device={self.device!r})")

    def __post_init__(self):
        if self.data.ndim != 3:
            raise ValueError(f"OctVolume data must be 3-D (n_bscans, depth, width), got {self.data.shape}")
        if min(self.data.shape) < 1:
            raise ValueError(f"OctVolume data has an empty axis: {self.data.shape}")
        if self.laterality not in (None, *LATERALITIES):
            raise ValueError(f"laterality must be OD, OS or None, got {self.laterality!r}")
        if self.scan_pattern not in SCAN_PATTERNS:
            raise ValueError(f"scan_pattern must be one of {SCAN_PATTERNS}, got {self.scan_pattern!r}")
        if self.intensity_transform not in INTENSITY_TRANSFORMS:
            raise ValueError(f"unknown intensity transform {self.intensity_transform!r}")
        if not isinstance(self.spacing, Spacing):
            raise ValueError(f"spacing must be a Spacing, got {type(self.spacing).__name__}")
        if self.localizer is not None and not isinstance(self.localizer, Localizer):
            raise ValueError(f"localizer must be a Localizer, got {type(self.localizer).__name__}")
        if self.bscan_positions is not None and len(self.bscan_positions) != self.data.shape[0]:
            raise ValueError(f"{len(self.bscan_positions)} B-scan positions for {self.data.shape[0]} B-scans")
        for name, heights in self.layers.items():
            if np.shape(heights) != (self.data.shape[0], self.data.shape[2]):
                raise ValueError(f"layer {name!r} has shape {np.shape(heights)}, expected (n_bscans, width)")

    @property
    def n_bscans(self) -> int:
        return self.data.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)

    def display(self) -> np.ndarray:
        """The whole volume as uint8 for display and for the network's preprocessing."""
        return INTENSITY_TRANSFORMS[self.intensity_transform](self.data)

    def replace(self, **changes) -> OctVolume:
        return dataclasses.replace(self, **changes)
