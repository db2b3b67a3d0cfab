"""The structure columns of ``octviewer-measure`` and ``octviewer-predict`` CSVs, formatted once."""

from __future__ import annotations

import math

from ..core import OctVolume
from . import rnfl

#: After ``file``: the columns, in order, that both commands write. ``cup_to_disc`` is the vertical
#: ratio (the clinical one, as in the synthetic cohort's manifest); the disc's other measures, which
#: the window and the PDF show, follow at the end so that older readers of the first columns still work.
#: ``rnfl_unsure_pct``: the share of the circle's A-scans where the boundaries are unsure for another reason
#: than a vessel's shadow (RNFL/GCL boundary uncertain, low signal, disc margin); ``rnfl_uncertain_sectors``:
#: the sectors resting on unsure A-scans for more than a third (their values are approximate), and "G" first where
#: the whole circle does (``rnfl_global_um`` approximate).
#: ``segmentation_used``: whose layer lines this row was measured on, "vendor" (the file's own) or "own"
#: (octviewer's); ``--segmentation vendor`` is a preference, and a file without lines is measured on ours
#: (the settings cell gave the preference only and read as if every row had used the file's lines).
#: ``rnfl_quadrant_T_um`` .. ``rnfl_quadrant_I_um``: the four quadrants; ``rnfl_clock01_um`` .. ``rnfl_clock12_um``:
#: the clock hours, numbered as on the fundus (docs/structure.md), as the window and the PDF show them. The CSV had
#: no temporal or nasal quadrant and no clock hour (walk-through H82, W17): ``rnfl_T_um`` and ``rnfl_N_um`` were
#: already the Garway-Heath sectors T and N, hence "quadrant" in the new names. At the end, so that the older
#: columns keep their names and places (an older results CSV is still this command's own: its header is a subset).
QUADRANT_COLUMNS = {f"rnfl_quadrant_{q}_um": q for q in ("T", "S", "N", "I")}
CLOCK_COLUMNS = {f"rnfl_clock{h:02d}_um": h for h in range(1, 13)}
#: ``rnfl_uncertain_quadrants`` (e.g. "S I") and ``rnfl_uncertain_clock_hours`` (e.g. "1 5 6"): the quadrants and clock
#: hours whose values are approximate, printed "~" in the window and the PDF (``rnfl.uncertain_quadrants`` /
#: ``uncertain_clock_hours``, the same rule as ``rnfl_uncertain_sectors``); the CSV gave them at full precision with
#: no flag (walk-through H91, W1). At the end, as the quadrant and clock-hour columns were added.
UNCERTAIN_COLUMNS = ["rnfl_uncertain_quadrants", "rnfl_uncertain_clock_hours"]
COLUMNS = ["laterality", "scan_pattern", "quality", "rnfl_global_um", "rnfl_T_um", "rnfl_TS_um", "rnfl_TI_um",
           "rnfl_N_um", "rnfl_NS_um", "rnfl_NI_um", "rnfl_class", "cup_to_disc", "rim_area_mm2",
           "cup_to_disc_average", "disc_area_mm2", "cup_area_mm2", "bmo_mrw_um", "rnfl_unsure_pct",
           "rnfl_uncertain_sectors", "segmentation_used", *QUADRANT_COLUMNS, *CLOCK_COLUMNS, *UNCERTAIN_COLUMNS]


def _num(value, digits: int = 1) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def report_columns(report) -> dict[str, str]:
    """A StructureReport as the CSV cells (blank where a measure does not apply)."""
    row = {"laterality": report.laterality or "", "scan_pattern": report.scan_pattern,
           "quality": report.quality.summary(), "rnfl_global_um": _num(report.rnfl_global_um)}
    for s in ("T", "TS", "TI", "N", "NS", "NI"):
        row[f"rnfl_{s}_um"] = _num(report.sectors.get(s))
    # the worst class of global, quadrants and sectors; "uncertain: <class>" when the boundary
    # is unsure on more than a quarter of the circle (analysis.UNCLASSIFIED_UNSURE), blank where no class applies
    unsure = report.too_unsure_to_classify and report.rnfl_class
    row["rnfl_class"] = f"uncertain: {report.rnfl_class}" if unsure else report.rnfl_class
    row["cup_to_disc"] = _num(report.cup_to_disc, 2)
    row["rim_area_mm2"] = _num(report.rim_area_mm2, 2)
    row["cup_to_disc_average"] = _num(report.cup_to_disc_average, 2)
    row["disc_area_mm2"] = _num(report.disc_area_mm2, 2)
    row["cup_area_mm2"] = _num(report.cup_area_mm2, 2)
    row["bmo_mrw_um"] = _num(report.bmo_mrw_um, 0)
    unsure = getattr(report, "unsure_fraction", float("nan"))
    row["rnfl_unsure_pct"] = _num(100.0 * unsure, 0)
    # "G" (the wheel's centre, Garway-Heath's global) where the global figure is approximate (walk-through H121, U1)
    row["rnfl_uncertain_sectors"] = " ".join((*(("G",) if getattr(report, "global_uncertain", False) else ()),
                                              *getattr(report, "uncertain_sectors", ())))
    row["segmentation_used"] = getattr(report, "source", "") or ""
    for column, q in QUADRANT_COLUMNS.items():
        row[column] = _num((getattr(report, "quadrants", None) or {}).get(q))
    for column, h in CLOCK_COLUMNS.items():
        row[column] = _num((getattr(report, "clock_hours", None) or {}).get(h))
    unsure_profile = getattr(report, "unsure_profile", None)
    row["rnfl_uncertain_quadrants"] = " ".join(rnfl.uncertain_quadrants(unsure_profile))
    row["rnfl_uncertain_clock_hours"] = " ".join(str(h) for h in rnfl.uncertain_clock_hours(unsure_profile,
                                                                                             report.laterality))
    return row


def structure_columns(volume: OctVolume, source: str = "vendor") -> dict[str, str]:
    """Measure ``volume`` and return its structure columns; for ``octviewer-predict`` to merge in."""
    from .analysis import measure

    return report_columns(measure(volume, source=source))
