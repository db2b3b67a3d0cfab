"""Pixels from the state, without a screen: the CAM colour table and the B-scan / en-face images
that the report prints (rendered from the data, never grabbed from widgets).

The CAM is signed (class-logit units): red where the B-scan pushed the decision towards glaucoma,
blue where towards normal, transparent at zero. Colours (CAM_LUT), the fixed scale -CAM_LIMIT to
+CAM_LIMIT and the cell-to-pixel mapping all come from octviewer.model.cam, so colours mean the
same on every eye and in the report (a per-volume min-max would make a normal eye's
least-negative region look "hot").
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from octviewer.model.cam import CAM_LIMIT, CAM_LUT, cam_to_bscan, cell_weights, enface_cam

__all__ = ["CAM_LIMIT", "cam_to_bscan"]  # re-exported for benchmarks and tests

#: The boundaries a clinician compares between scans keep one colour and one name whoever traced them
#: (the file's own lines, octviewer's) and wherever they are drawn (the viewer, the report): a line scan
#: drew its ILM in the colour a cube gave Bruch's membrane, and named its lines otherwise (walk-throughs).
#: Other layers take the palette, in the file's order, which holds none of these three colours.
BOUNDARY_COLOURS = {"ILM": "#ff5252", "RNFL": "#ffd740", "BM": "#40c4ff"}
BOUNDARY_NAMES = {"ILM": "ILM", "RNFL": "RNFL outer boundary", "BM": "Bruch's membrane"}
LAYER_COLOURS = ["#69f0ae", "#e040fb", "#ffab40", "#b388ff", "#eeeeee", "#a1887f"]


def bscans_text(n: int) -> str:
    """ "1 B-scan", "16 B-scans": the study tree said "1 B-scans" (H81), the en-face "4 B-scan(s) are too few"
    (walk-through H82, W17)."""
    return f"{n} B-scan{'s' if n != 1 else ''}"


def layer_colour(name: str, k: int) -> str:
    return BOUNDARY_COLOURS.get(str(name).upper(), LAYER_COLOURS[k % len(LAYER_COLOURS)])


def layer_name(name: str) -> str:
    """The legend's name of a layer: ILM, RNFL outer boundary, Bruch's membrane, or the file's name."""
    return BOUNDARY_NAMES.get(str(name).upper(), str(name))


def segmentation_line(seg, key: str, i: int) -> np.ndarray:
    """The depths (pixels) of the measured segmentation's line ``key`` ("ilm", "rnfl", "bm") on B-scan ``i`` as
    drawn, on screen and in the report. The RNFL outer boundary stops at Bruch's membrane opening: it is not drawn
    inside the disc (the segmentation's ``disc_mask``) nor where it lies at or below Bruch's membrane. It ran below
    Bruch's membrane inside the cup, where there is no RNFL to bound (walk-through H65, W22)."""
    depth = np.asarray(getattr(seg, key)[i], np.float64)
    if key != "rnfl":
        return depth
    bm = np.asarray(seg.bm[i], np.float64)
    hidden = np.isfinite(bm) & (depth >= bm)
    mask = getattr(seg, "disc_mask", None)
    if mask is not None and np.shape(mask)[1:] == depth.shape and i < np.shape(mask)[0]:
        hidden |= np.asarray(mask[i], bool)
    return np.where(hidden, np.nan, depth)


def bscan_lines(state, i: int | None = None) -> list[tuple[str, str, np.ndarray]]:
    """(legend name, colour, depth per A-scan in pixels) of the lines the viewer draws on B-scan ``i``
    (none when View > layer lines is off): the measured segmentation's ILM, RNFL and BM when there is
    one (it replaces the file's lines of those names, as on screen), and the file's other layers. The
    report draws the same lines: its B-scan had none while the screen had them (walk-through)."""
    i = state.index if i is None else i
    v = state.volume
    if v is None or not state.settings.show_layers or state.refused:  # none on a refused scan, as on screen
        return []
    seg = getattr(state.structure, "segmentation", None)
    lines = []
    if seg is not None and i < seg.ilm.shape[0]:
        whose = " (file's own)" if seg.source == "vendor" else " (octviewer)"
        for key in ("ILM", "RNFL", "BM"):
            lines.append((BOUNDARY_NAMES[key] + whose, BOUNDARY_COLOURS[key], segmentation_line(seg, key.lower(), i)))
    for k, (name, heights) in enumerate(v.layers.items()):
        if seg is not None and str(name).upper() in BOUNDARY_COLOURS:
            continue
        depth = np.asarray(heights[i], np.float64)
        if np.isfinite(depth).any():
            lines.append((layer_name(name) + " (file's own)", layer_colour(name, k), depth))
    return lines


def cam_lut() -> np.ndarray:
    """(256, 4) uint8 RGBA: the fixed diverging CAM colours with alpha growing with |value|, so a
    cell near 0 (undecided) leaves the B-scan visible and strong evidence either way shows."""
    t = np.abs(np.linspace(-1, 1, 256))
    alpha = np.clip(t * 1.6, 0, 1) * 255
    return np.concatenate([CAM_LUT, alpha.round().astype(np.uint8)[:, None]], axis=1)


CAM_LEVELS = (-CAM_LIMIT, CAM_LIMIT)


def cam_rgba(cam: np.ndarray) -> np.ndarray:
    """Signed CAM (any shape h, w) -> (h, w, 4) uint8 on the fixed scale."""
    t = np.clip((np.nan_to_num(cam) + CAM_LIMIT) / (2 * CAM_LIMIT), 0, 1)
    return cam_lut()[np.round(t * 255).astype(np.intp)]


def _geometry(state) -> SimpleNamespace:
    g = state.cam_geometry
    return SimpleNamespace(cam=state.cams, cam_input_size=g["input_size"], cam_stride=g["stride"],
                           cam_offset=g["offset"])


def blend(grey: np.ndarray, levels: tuple[float, float], cam: np.ndarray | None, opacity: float) -> np.ndarray:
    """uint8 grey (h, w) through the contrast window, with the CAM over it -> (h, w, 3) uint8."""
    lo, hi = levels
    g = np.clip((grey.astype(np.float32) - lo) / max(hi - lo, 1e-6), 0, 1) * 255
    rgb = np.repeat(g[..., None], 3, axis=2)
    if cam is not None:
        rgba = cam_rgba(cam).astype(np.float32)
        a = rgba[..., 3:] / 255 * opacity
        rgb = rgb * (1 - a) + rgba[..., :3] * a
    return np.ascontiguousarray(rgb.round().astype(np.uint8))


def bscan_cam(state, i: int) -> np.ndarray | None:
    """The CAM of B-scan ``i`` mapped onto its pixels, or None when there is none to show."""
    if not state.cam_visible_for(i):
        return None
    g = state.cam_geometry
    (in_h, in_w), (s_h, s_w), (o_h, o_w) = (_pair(g["input_size"]), _pair(g["stride"]), _pair(g["offset"]))
    cells = state.cams[i]
    depth, width = state.display.shape[1:]
    left, right, w_left, w_right = _axis(cells.shape[0], depth, in_h, s_h, o_h)
    cols = cell_weights(cells.shape[1], width, in_w, s_w, o_w)
    across = cells @ cols.T  # (h, width): tiny
    cam = w_left * across[left] + w_right * across[right]
    ilm = ilm_row(state, i)
    if ilm is not None and ilm.shape == (width,):
        # not drawn over the vitreous, above the ILM (transparent, as the en-face CAM's rows not analysed): the
        # coarse cells reach up into it, and the whole B-scan turned red above the retina (walk-through H65, W21)
        rows = np.arange(depth)[:, None]
        above = np.isfinite(ilm)[None, :] & (rows < np.nan_to_num(ilm, nan=0.0)[None, :] - VITREOUS_MARGIN_PX)
        cam = np.where(above, np.nan, cam)
    return cam


#: CAM rows kept above the ILM (pixels): the line itself and the retina's surface stay on the map
VITREOUS_MARGIN_PX = 3


def ilm_row(state, i: int) -> np.ndarray | None:
    """The ILM's depth per A-scan on B-scan ``i`` (pixels): the measured segmentation's, else the file's own ILM
    layer, else None. A refused scan's lines are not drawn and not used either."""
    if state.refused:
        return None
    seg = getattr(state.structure, "segmentation", None)
    if seg is not None and i < seg.ilm.shape[0]:
        return np.asarray(seg.ilm[i], np.float64)
    for name, heights in state.volume.layers.items():
        if str(name).upper() == "ILM":
            return np.asarray(heights[i], np.float64)
    return None


def cam_resolution_text(state, i: int) -> str:
    """How coarse B-scan ``i``'s CAM is, in words, or "" when it has none: the network's last feature map
    has a few cells per B-scan (5 x 5 for the demo model), each drawn smoothly over ~0.4 mm of depth, so a
    hot spot can sit under Bruch's membrane while the cell read the RNFL above it (walk-through M5: the
    mapping was checked exact; the cells are what is coarse). Said where the CAM is shown."""
    if state.cams is None or not state.is_loaded(i):
        return ""
    g = state.cam_geometry
    (in_h, _), (s_h, _) = _pair(g["input_size"]), _pair(g["stride"])
    rows, cols = np.asarray(state.cams[i]).shape
    pitch_px = s_h * state.display.shape[1] / in_h
    dz = state.volume.spacing.depth_mm
    deep = f"one cell about {pitch_px * dz:.1f} mm deep" if dz else f"one cell {pitch_px:.0f} pixels deep"
    return (f"coarse: {rows} x {cols} cells over the B-scan, {deep}; it shows which part of the scan weighed, "
            "not which layer")


def _pair(v) -> tuple:
    return tuple(v) if np.ndim(v) else (v, v)


@lru_cache(maxsize=16)
def _axis(n_cells: int, out_len: int, input_len: int, stride: float, offset: float):
    """cam.cell_weights for the axial axis as its (at most) two non-zero cells per row.

    Identical to ``cam_to_bscan`` (tests compare them) but without a (depth x cells) matrix
    product per B-scan: on a loaded CPU that product alone took 2-15 ms for a 1024-px B-scan."""
    w = cell_weights(n_cells, out_len, input_len, stride, offset)
    rows = np.arange(out_len)
    left = np.argmax(w > 0, axis=1)
    right = np.minimum(left + 1, n_cells - 1)
    w_right = np.where(right != left, w[rows, right], 0.0)
    return left, right, w[rows, left][:, None], w_right[:, None].astype(np.float32)


#: height / width of the report's B-scan, at least: a Cirrus B-scan at its physical aspect (6 x 2 mm,
#: 0.33) printed as a thin strip in which no layer could be told apart (walk-through M6); clinical
#: printouts stretch the depth likewise, and the caption says by how much (``bscan_stretch``)
REPORT_BSCAN_ASPECT = (0.5, 1.0)


def _physical_aspect(state, i: int) -> float:
    sp = state.volume.spacing
    depth, width = state.display[i].shape[:2]
    return (depth * sp.depth_mm) / (width * sp.ascan_mm) if sp.known else depth / width


def bscan_stretch(state, i: int | None = None) -> float:
    """How much the report's B-scan is stretched in depth against the true aspect (1.0: not at all);
    1.0 when the file gives no pixel size (there is no true aspect to state)."""
    i = state.index if i is None else i
    if not state.volume.spacing.known:
        return 1.0
    physical = _physical_aspect(state, i)
    return float(np.clip(physical, *REPORT_BSCAN_ASPECT)) / physical


#: a circle B-scan's orientation along its length, as (fraction of the B-scan's width, side): the circle is stored in
#: TSNIT order for both eyes, starting temporally (``structure.rnfl.circle_profile``, the one rule the TSNIT plot
#: and the sectors also follow)
CIRCLE_SIDES = ((0.0, "T"), (0.25, "S"), (0.5, "N"), (0.75, "I"), (1.0, "T"))


def bscan_sides(volume) -> tuple[tuple[float, str], ...]:
    """Where the B-scan's sides lie along its width, as (fraction, letter), for the labels under the B-scan on
    screen and on the report's: T S N I T along a circle scan; T and N at the ends of a cube's B-scans by the
    eye (a right eye's temporal side on the left, fundus view, as the en-face shows it); T and N at a horizontal
    line scan's ends by its direction on the localizer (``line_sides``). None for a line whose direction is not
    known or that is not near-horizontal, or a cube of an unknown eye. The B-scan had no orientation at all: the TSNIT
    order of a circle had to be inferred (walk-through H65, W14)."""
    if volume is None:
        return ()
    if volume.scan_pattern == "circle":
        return CIRCLE_SIDES
    if volume.scan_pattern == "volume" and volume.laterality in ("OD", "OS"):
        return ((0.0, "T"), (1.0, "N")) if volume.laterality == "OD" else ((0.0, "N"), (1.0, "T"))
    if volume.scan_pattern == "line":
        return line_sides(volume)
    return ()


#: The most a line scan may slope on the localizer, in degrees from horizontal, and still have its ends named T
#: and N: a steeper line runs as much superior-inferior as temporal-nasal, and a vertical one has no T/N ends.
LINE_MAX_SLOPE_DEG = 20.0


def line_sides(volume) -> tuple[tuple[float, str], ...]:
    """T and N at the ends of a line scan's B-scan, read from where the line lies on the localizer and the eye,
    as the en-face names its sides (a right eye's temporal side on the left): the B-scan starts at the line's
    ``start``, so a line drawn left to right on a right eye's localizer runs from T to N, right to left from N to T.
    None (no letters, rather than a guess) where the direction is not known: no localizer positions, an eye not
    known, B-scans that do not all run the same way, or a line more than LINE_MAX_SLOPE_DEG from horizontal (a
    vertical line's ends are S and I, an oblique one's neither). A line scan's B-scan had no letters at its ends,
    though the en-face drew the line from T to N (walk-through H82, W5)."""
    positions = volume.bscan_positions
    if volume.laterality not in ("OD", "OS") or volume.localizer is None or not positions:
        return ()
    row_mm, col_mm = (mm or 1.0 for mm in volume.localizer.spacing_mm)  # the localizer's pixels may not be square
    rightwards = set()
    for p in positions:
        if p.center is not None:
            return ()
        dx, dy = (p.end[0] - p.start[0]) * col_mm, (p.end[1] - p.start[1]) * row_mm
        if dx == 0 or np.degrees(np.arctan2(abs(dy), abs(dx))) > LINE_MAX_SLOPE_DEG:
            return ()
        rightwards.add(dx > 0)
    if len(rightwards) != 1:
        return ()
    left, right = ("T", "N") if volume.laterality == "OD" else ("N", "T")
    if not rightwards.pop():
        left, right = right, left
    return ((0.0, left), (1.0, right))


def _side_letters(img: np.ndarray, sides) -> np.ndarray:
    """``img`` with the B-scan's sides (``bscan_sides``) written at their places along its bottom edge, white on
    dark plates as the en-face letters are (grey: the printed B-scan stays a grey image under its lines)."""
    import cv2

    h, w = img.shape[:2]
    for fraction, text in sides:
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.9, 2)
        pad = 4
        x0 = min(max(int(round(fraction * w)) - tw // 2, pad), w - tw - pad)
        y0 = h - pad - 2
        cv2.rectangle(img, (x0 - pad, y0 - th - pad), (x0 + tw + pad, y0 + pad), (20, 20, 20), -1)
        cv2.putText(img, text, (x0, y0), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def bscan_image(state, i: int | None = None, height: int | None = None) -> np.ndarray:
    """The B-scan as the viewer shows it (contrast window, CAM) at the physical aspect ratio when
    the file states it, kept between REPORT_BSCAN_ASPECT, resampled to ``height`` rows (the
    report's figure)."""
    import cv2

    i = state.index if i is None else i
    rgb = blend(state.display[i], state.settings.levels, bscan_cam(state, i), state.settings.cam_opacity)
    aspect = float(np.clip(_physical_aspect(state, i), *REPORT_BSCAN_ASPECT))
    out_w = 900
    out_h = height or max(int(out_w * aspect), 1)
    out = cv2.resize(rgb, (out_w, out_h), interpolation=cv2.INTER_AREA)
    depth, width = rgb.shape[:2]
    for _, colour, heights in bscan_lines(state, i):
        colour = tuple(int(colour[k:k + 2], 16) for k in (1, 3, 5))
        x = (np.arange(heights.size) + 0.5) * out_w / width
        y = (np.asarray(heights, np.float64) + 0.5) * out_h / depth
        ok = np.isfinite(y)
        # one polyline per run of traced A-scans: a gap (vessel shadow, untraced edge) stays a gap
        runs = np.split(np.flatnonzero(ok), np.flatnonzero(np.diff(np.flatnonzero(ok)) > 1) + 1)
        for run in runs:
            if run.size > 1:
                pts = np.stack([x[run], y[run]], axis=1).round().astype(np.int32)
                cv2.polylines(out, [pts], False, (0, 0, 0), 4, cv2.LINE_AA)  # a dark edge, as on screen (W21)
                cv2.polylines(out, [pts], False, colour, 2, cv2.LINE_AA)
    return _side_letters(out, bscan_sides(state.volume))


def enface_projection(display: np.ndarray) -> np.ndarray:
    """(n_bscans, width) uint8: the mean along depth, stretched to the full grey range."""
    img = display.mean(axis=1, dtype=np.float32)
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6) * 255
    return img.astype(np.uint8)


def enface_cam_map(state) -> np.ndarray | None:
    """(n_bscans, width) en-face CAM from the same cells and mapping as the B-scan overlay (rows of
    B-scans not analysed yet are NaN, drawn transparent), or None."""
    if (state.cams is None or not state.settings.show_cam or state.volume.localizer is not None
            or state.map_shown):
        return None
    cam = enface_cam(_geometry(state), state.volume)
    cam[~np.isfinite(state.probs)] = np.nan
    return cam


def enface_content(state) -> str:
    """What the en-face figure shows over the scan, so that the report's caption names it: "localizer"
    (the device's own image), "thickness" or "deviation" (an RNFL map, which the en-face CAM steps
    aside for), "cam", or "" (the projection alone)."""
    if state.volume.localizer is not None:
        return "localizer"
    if state.map_shown:
        return state.map_shown
    return "cam" if state.cams is not None and state.settings.show_cam else ""


def enface_image(state, size: int = 400, map_rgba: np.ndarray | None = None) -> np.ndarray:
    """The en-face as the viewer draws it: the localizer, or the projection in millimetres with
    the en-face CAM, or ``map_rgba`` (the RNFL map shown, RGBA, drawn at the viewer's 0.75
    opacity), and the current B-scan's line."""
    import cv2

    v = state.volume
    if v.localizer is not None:
        img = np.asarray(v.localizer.image)
        img = img if img.ndim == 2 else img[..., :3].mean(axis=2)
        rgb = blend(img.astype(np.uint8), (0, 255), None, 0)
        _draw_position(rgb, v, state.index)
        out = cv2.resize(rgb, (size, max(1, int(size * img.shape[0] / img.shape[1]))), interpolation=cv2.INTER_AREA)
        return _orientation_letters(out, v.laterality)
    rgb = blend(enface_projection(state.display), (0, 255), enface_cam_map(state), state.settings.cam_opacity)
    if map_rgba is not None:
        layer = cv2.resize(np.ascontiguousarray(map_rgba), rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        a = layer[..., 3:].astype(np.float32) / 255 * 0.75
        rgb = np.ascontiguousarray((rgb * (1 - a) + layer[..., :3] * a).round().astype(np.uint8))
    sp = v.spacing
    h_mm = v.n_bscans * (sp.bscan_mm or 0) if sp.bscan_mm else v.n_bscans
    w_mm = v.shape[2] * (sp.ascan_mm or 0) if sp.ascan_mm and sp.bscan_mm else v.shape[2]
    out_h = max(1, int(size * h_mm / w_mm))
    out = cv2.resize(rgb, (size, out_h), interpolation=cv2.INTER_NEAREST if v.n_bscans < 64 else cv2.INTER_AREA)
    row = int((state.index + 0.5) / v.n_bscans * out_h)
    out[max(row - 1, 0):row + 1] = (0, 229, 255)
    return _orientation_letters(out, v.laterality)


def _draw_position(rgb: np.ndarray, volume, index: int) -> None:
    """The B-scan's place on the localizer, as the en-face view draws it: the circle of a circle scan, the line of a
    line or raster B-scan (cyan, in the localizer's pixels). The circle scan's report had no SLO image at all, so
    its centring on the disc could not be checked on paper (walk-through H65, W14)."""
    import cv2

    positions = volume.bscan_positions
    if not positions or not 0 <= index < len(positions):
        return
    p = positions[index]
    thick = max(2, round(max(rgb.shape[:2]) / 250))
    if p.center is not None:
        cv2.circle(rgb, (round(p.center[0]), round(p.center[1])), max(1, round(p.radius)), (0, 229, 255), thick,
                   cv2.LINE_AA)
    else:
        cv2.line(rgb, tuple(round(c) for c in p.start), tuple(round(c) for c in p.end), (0, 229, 255), thick,
                 cv2.LINE_AA)


def _orientation_letters(img: np.ndarray, laterality: str | None) -> np.ndarray:
    """S, I, and T/N by laterality, on dark plates, where the viewer puts them (a printed en-face
    without them cannot be read)."""
    import cv2

    h, w = img.shape[:2]
    scale = w / 400  # the report prints the 400 px image at about 170 px: letters sized for that
    font, thick = 1.1 * scale, max(1, round(2 * scale))
    nasal_right = laterality == "OD"
    letters = [("S", (w // 2, 0)), ("I", (w // 2, h))]
    if laterality in ("OD", "OS"):
        letters += [("T" if nasal_right else "N", (0, h // 2)), ("N" if nasal_right else "T", (w, h // 2))]
    for text, (x, y) in letters:
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        pad = 4
        x0 = min(max(x - tw // 2, pad), w - tw - pad)
        y0 = min(max(y + th // 2, th + pad), h - pad)
        cv2.rectangle(img, (x0 - pad, y0 - th - pad), (x0 + tw + pad, y0 + pad), (20, 20, 20), -1)
        cv2.putText(img, text, (x0, y0), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 204, 0), thick, cv2.LINE_AA)
    return img


def legend_image(width: int = 300, height: int = 14) -> np.ndarray:
    """(height, width, 3) uint8: the CAM colour bar on a white page, -CAM_LIMIT left, +CAM_LIMIT right."""
    rgba = cam_rgba(np.linspace(-CAM_LIMIT, CAM_LIMIT, width)[None, :].repeat(height, axis=0)).astype(np.float32)
    a = rgba[..., 3:] / 255
    return (rgba[..., :3] * a + 255 * (1 - a)).round().astype(np.uint8)


def bscan_ticks(n: int) -> list[int]:
    """Whole B-scan numbers for an axis: 1, round multiples of a 1-2-5 step (about 8 ticks), and n."""
    step = next(x for x in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, n) if x >= n / 8)
    inner = [i for i in range(step, n, step) if i > 1 and n - i >= step / 2]
    return sorted({1, *inner, n})


def curve_image(state, width: int = 380, height: int = 150) -> np.ndarray:
    """(height, width, 3) uint8 on white: P(glaucoma) per B-scan (numbered from 1), the decision
    threshold dashed, the B-scan shown in the report as a vertical line."""
    import cv2

    img = np.full((height, width, 3), 255, np.uint8)
    n = max(state.n_bscans, 1)
    # room for the last B-scan number centred on its tick, and for the curve's 2 px line at P = 1:
    # the right label and the curve at 1.0 were cut at the image's edge (walk-through)
    (label_w, _), _ = cv2.getTextSize(str(n), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    left, right, top, bottom = 44, label_w // 2 + 6, 10, 38

    def xy(i, p):
        x = left + (i / max(n - 1, 1)) * (width - left - right)
        return int(round(x)), int(round(top + (1 - p) * (height - top - bottom)))
    grey, black = (170, 170, 170), (0, 0, 0)
    for p in (0.0, 0.5, 1.0):
        cv2.line(img, xy(0, p), xy(n - 1, p), grey, 1)
        cv2.putText(img, f"{p:.1f}", (4, xy(0, p)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, black, 1, cv2.LINE_AA)
    for k in bscan_ticks(n):
        x = xy(k - 1, 0)[0]
        (tw, _), _ = cv2.getTextSize(str(k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        cv2.putText(img, str(k), (x - tw // 2, height - 22), cv2.FONT_HERSHEY_SIMPLEX, 0.45, black, 1, cv2.LINE_AA)
    cv2.putText(img, "B-scan", (left + (width - left - right) // 2 - 24, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                black, 1, cv2.LINE_AA)
    cv2.line(img, xy(state.index, 0), xy(state.index, 1), (0, 150, 200), 2)
    if state.prediction is not None:
        t = state.prediction.threshold
        for i in range(0, n - 1, 2):
            cv2.line(img, xy(i, t), xy(min(i + 1, n - 1), t), (200, 60, 60), 1)
    probs = state.probs if state.probs is not None else np.array([])
    pts = [xy(i, float(p)) for i, p in enumerate(probs) if np.isfinite(p)]
    if len(pts) > 1:
        cv2.polylines(img, [np.array(pts, np.int32)], False, (230, 100, 40), 2, cv2.LINE_AA)
    if state.prediction is not None:
        _threshold_label(img, f"threshold {state.prediction.threshold:.2f}", xy(0, t), xy(n - 1, t)[0], pts,
                         (top, height - bottom))
    return img


def threshold_label_place(curve_x, curve_y, line_y: float, x_range, y_range, size, pad) -> tuple[float, bool]:
    """``threshold_label_best`` without the count: where the threshold line's label goes."""
    return threshold_label_best(curve_x, curve_y, line_y, x_range, y_range, size, pad)[1:]


def threshold_label_best(curve_x, curve_y, line_y: float, x_range, y_range, size, pad) -> tuple[int, float, bool]:
    """Where the threshold line's label goes, in the window (``CurveView``) and on the report's curve alike: its
    left edge (at the line's left end, its middle or its right end) and whether above the line (else below),
    wherever it covers the least of the curve, its segments too, not only its points: the window counted points
    alone and put "threshold 0.32" across a segment climbing through it (ninth walk-through, shot_69). Any units
    with y growing upwards (the report passes its pixel rows negated); ``size`` is the label's (width, height)
    and ``pad`` its (x, y) margin; places outside ``y_range`` are not used. Ties go to the left, then above.
    Returned with how many of the curve's samples the place still covers (0: none; a curve hovering about the
    threshold from end to end leaves no free place, and the window then lays the label on a plate)."""
    (x0, x1), (y0, y1), (w, h), (pad_x, pad_y) = x_range, y_range, size, pad
    x, y = np.asarray(curve_x, float), np.asarray(curve_y, float)
    # the curve as drawn: points and, between two finite neighbours, its segment sampled every tenth
    steps = np.linspace(0.0, 1.0, 10, endpoint=False)[None, :]
    ok = np.isfinite(x[:-1]) & np.isfinite(y[:-1]) & np.isfinite(x[1:]) & np.isfinite(y[1:])
    sx = (x[:-1, None] + steps * (x[1:, None] - x[:-1, None]))[ok].ravel()
    sy = (y[:-1, None] + steps * (y[1:, None] - y[:-1, None]))[ok].ravel()
    finite = np.isfinite(x) & np.isfinite(y)
    sx, sy = np.concatenate([sx, x[finite]]), np.concatenate([sy, y[finite]])
    best = None
    for left in (x0 + pad_x, (x0 + x1 - w) / 2, x1 - w - pad_x):
        for above in (True, False):
            low = line_y + pad_y if above else line_y - pad_y - h
            if low < y0 or low + h > y1:
                continue
            covered = int(np.sum((sx >= left - pad_x) & (sx <= left + w + pad_x) & (sy >= low - pad_y)
                                 & (sy <= low + h + pad_y)))
            if best is None or covered < best[0]:
                best = (covered, left, above)
    return (0, x0 + pad_x, True) if best is None else best


def _threshold_label(img: np.ndarray, text: str, start, end_x: int, pts, rows) -> None:
    """The dashed line's label, as the window writes it ("threshold 0.32"): the report's curve drew the line
    unnamed (eighth walk-through). Placed by the window's rule (``threshold_label_place``), on a white plate so
    the grid does not cross it."""
    import cv2

    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    (x0, y), pad = start, 3
    if rows[1] - rows[0] < th + 2 * pad + 1:
        return
    px = [p[0] for p in pts]
    py = [-p[1] for p in pts]  # pixel rows grow downwards: negated, "above" is above
    left, above = threshold_label_place(px, py, -y, (x0, end_x), (-rows[1], -rows[0]), (tw, th), (pad, pad))
    x, yy = int(round(left)), (y - pad - 1 if above else y + th + pad + 1)
    cv2.rectangle(img, (x - 1, yy - th - 1), (x + tw + 1, yy + 2), (255, 255, 255), -1)
    cv2.putText(img, text, (x, yy), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (200, 60, 60), 1, cv2.LINE_AA)
