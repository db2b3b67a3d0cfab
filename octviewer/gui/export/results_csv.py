"""File > Export results as CSV: the volume's row first, then one row per B-scan (numbered from 1,
as the viewer shows them), each with the file name, eye, date and the research-use notice, so a row
read alone still says where it came from and what it is. The first line is the header (a leading
comment line was read as the header by csv readers). The volume row carries the structure
measurement's columns (those of ``octviewer-measure``) when the scan was measured; a scan the
network did not analyse (a circle scan, or one the quality gate refused) is exported with its
structure columns alone. Qt-free.

Written as a new file renamed into place (``targets.replaced``): a failure leaves an existing file as it
was. The file cell keeps a name that is not UTF-8 as its bytes (``surrogateescape``, as the batch
commands' CSVs do: a Latin-1 name raised UnicodeEncodeError and left the header alone, A7-10) and shows
hidden characters as escapes (``core.text.printable``: a right-to-left override made ``PAT<U+202E>mcd.1234.dcm``
read "PAT4321.dcm", A7-11)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from octviewer.core.csv_safe import csv_cell, notice
from octviewer.core.prediction import worse_vf_indices
from octviewer.core.text import printable
from octviewer.model.meta import is_vf_baseline_caveat
from octviewer.model.predictor import VF_CLIPPED
from octviewer.pipeline.outputs import QUALITY_CHECK_COLUMN, quality_check_cells, refused_quality_text
from octviewer.structure.columns import COLUMNS as STRUCTURE_COLUMNS
from octviewer.structure.columns import report_columns
from octviewer.structure.normative import UNCLASSED_SECTORS

from ..structure.page import not_measured_for_pattern, wheel_class
from ..viewer.results_panel import scan_date
from .targets import replaced

#: each quadrant's class (normal, borderline, outside; blank where none applies): the PDF gives "outside normal limits
#: in quadrant S, quadrant I" as the reason for the RNFL class, and the CSV's sector columns could not say it (eighth
#: walk-through). Their µm are ``rnfl_quadrant_T_um`` .. ``_I_um`` (``structure.columns``). GUI export only. Every
#: quadrant column is named rnfl_quadrant_*: the window's own rnfl_S_um / rnfl_I_um duplicated rnfl_quadrant_S/I_um
#: while rnfl_T_um / rnfl_N_um (the commands' columns, kept for their --resume) are Garway-Heath sectors, so a reader
#: took rnfl_T_um / rnfl_N_um for quadrants too (walk-through H91, W2). Renamed: rnfl_S_class / rnfl_I_class are
#: rnfl_quadrant_S_class / _I_class, beside T and N's; the notice (``COLUMNS_NOTE``) and docs/structure.md say so.
QUADRANT_COLUMNS = {f"rnfl_quadrant_{q}_class": ("classes", f"quadrant_{q}") for q in ("T", "S", "N", "I")}
#: each Garway-Heath sector's class (normal, borderline, outside; blank where not classified: NS and NI never are), as
#: the Structure panel's wheel and the PDF colour it (``structure.page.wheel_class``, the one rule): the CSV gave the
#: sectors' µm with no class (H56 walk-through). After the columns before them, so that those keep their places.
SECTOR_CLASS_COLUMNS = {f"rnfl_{s}_class": s for s in ("T", "TS", "TI", "N", "NS", "NI")}
#: the global RNFL's own class (normal, borderline, outside; blank where not classified), by the rule of the Structure
#: panel's "Global RNFL 88 µm (normal)" and its wheel's centre (``structure.page.wheel_class``). The commands'
#: ``rnfl_class`` is the OVERALL class, the worst of the global RNFL, its quadrants and sectors: beside
#: rnfl_global_um 88.3 it read "borderline" while the window said the global RNFL was normal (walk-through H65,
#: W12). Kept under its name (the commands write it, and older files have it); the notice says what each is.
GLOBAL_CLASS_COLUMN = "rnfl_global_class"
CLASS_NOTE = ("rnfl_class: the overall RNFL class, the worst of the global RNFL, its quadrants and sectors; "
              "rnfl_global_class: the global RNFL's own class")
#: the VF indices (vfi md psd, space-separated) whose estimates the model's evaluation found WORSE than the class-mean
#: baseline: do not use them (``core.prediction.worse_vf_indices``; walk-through H65, W10)
WORSE_COLUMN = "vf_worse_than_baseline"
COLUMNS_NOTE = ("rnfl_T_um, rnfl_TS_um, rnfl_TI_um, rnfl_N_um, rnfl_NS_um, rnfl_NI_um and their classes (rnfl_T_class "
                "to rnfl_NI_class): Garway-Heath sectors; rnfl_quadrant_T_um to rnfl_quadrant_I_um and their classes "
                "(rnfl_quadrant_T_class to rnfl_quadrant_I_class): quadrants (earlier versions' rnfl_S_um, rnfl_I_um, "
                "rnfl_S_class, rnfl_I_class: the S and I quadrants' columns, now under these names); "
                "rnfl_clock01_um to rnfl_clock12_um: clock hours as seen on "
                "the fundus; rnfl_uncertain_sectors, rnfl_uncertain_quadrants, rnfl_uncertain_clock_hours: those whose "
                "values are approximate (printed ~ in the window and the PDF)")
#: why some class columns are always blank beside their µm, in the PDF's words (``structure.page._disc_text``): the
#: CSV gave rnfl_NS_class / rnfl_NI_class empty beside rnfl_NS_um / rnfl_NI_um with no word why (walk-through H95,
#: V9). The sector columns keep their names (rnfl_T_um .. rnfl_NI_um: the commands' since their first version, which
#: ``--resume`` and readers of their CSVs match exactly); ``COLUMNS_NOTE`` says which are sectors.
UNCLASSED_NOTE = (f"{', '.join(f'rnfl_{s}_class' for s in UNCLASSED_SECTORS)}: always blank: sectors "
                  f"{', '.join(UNCLASSED_SECTORS)} are given in µm only, not classed (the quadrant's range would call "
                  "normal eyes thin); clock hours likewise have no class (no published normal range per clock hour)")


#: the ``decision`` cell of a scan the network did not analyse (a circle or line scan, one the quality check
#: refused): a short value a spreadsheet can filter on; why, in the row's notice (``not_analysed_note``). The cell
#: held the whole sentence ("not analysed: this is a circle scan; the glaucoma estimate needs ...", walk-through
#: H82, W17); the notice gives it after the research-use notice.
NOT_ANALYSED = "not analysed"


def not_analysed_note(reason: str) -> str:
    """The notice's first part for a scan not analysed: "not analysed: <why>" ("not analysed" alone without a
    reason). The reason may say "Not analysed: ..." itself (the predictor's): it read "not analysed: Not analysed"."""
    reason = re.sub(r"(?i)^not analysed\b[:.]?\s*", "", reason.strip())
    return f"{NOT_ANALYSED}: {reason}" if reason else NOT_ANALYSED


def _quadrant_cells(structure) -> list[str]:
    """The cells of ``QUADRANT_COLUMNS`` for a StructureReport (blank where not measured or not classed)."""
    cells = []
    for kind, key in QUADRANT_COLUMNS.values():
        cells.append((getattr(structure, kind, None) or {}).get(key) or "")
    return cells


def _sector_class_cells(structure) -> list[str]:
    """The cells of ``SECTOR_CLASS_COLUMNS`` and ``GLOBAL_CLASS_COLUMN``: each class as the Structure panel gives it."""
    return [wheel_class(structure, s) for s in SECTOR_CLASS_COLUMNS.values()] + [wheel_class(structure, "global")]


#: the patient as the window names the scan, and the study's measured field for it (walk-through H65, W12): after the
#: columns before them, so that those keep their places. "patient", not "patient_id": with eye, date and the
#: estimates' vfi/md/psd, a patient_id column made this CSV a VF table's header, and a study folder holding it read
#: the network's estimates as measured fields (attack run 13, A13-15; the VF reader refuses our CSVs as well).
MEASURED_COLUMNS = ("patient", "measured_vf_date", "measured_vf_days_from_scan", "measured_vfi",
                    "measured_md", "measured_psd", "measured_vf_compared")


def _measured_cells(patient_id: str | None, measured, scan_acquired, identify: bool) -> list[str]:
    """The cells of ``MEASURED_COLUMNS``; "compared" says "no: <reason>" where the window prints "not compared"."""
    from octviewer.study.vf import vf_days_from_scan, vf_not_compared

    who = (patient_id or "") if identify else "withheld"
    if measured is None:
        return [who, *["" for _ in MEASURED_COLUMNS[1:]]]
    days = vf_days_from_scan(measured.date, scan_acquired)
    when = (measured.date.isoformat() if measured.date else "") if identify else "withheld"
    why_not = vf_not_compared(measured.date, scan_acquired)

    def num(value):
        return "" if value is None else f"{value:.2f}"

    return [who, when, "" if days is None else str(days), num(measured.vfi), num(measured.md_db),
            num(measured.psd_db), f"no: {why_not}" if why_not else "yes"]


def structure_notice(structure) -> str:
    """What the volume row's notice says of its structure columns: which are sectors and which quadrants, and,
    where anything was classed, whose normal figures classed it, in the words the scan PDF prints
    ("Normal figures: ..."; ``normative.source_for`` starts "ANOTHER DEVICE'S NORMALS: Cirrus HD-OCT figures" for
    any other device). A Spectralis scan's "normal" in the CSV did not say it was Cirrus's (ninth walk-through)."""
    parts = [COLUMNS_NOTE, UNCLASSED_NOTE] if getattr(structure, "sectors", None) else []
    if getattr(structure, "rnfl_class", None) or any((getattr(structure, "classes", None) or {}).values()):
        parts.append(CLASS_NOTE)
    if any((getattr(structure, "classes", None) or {}).values()):  # as page.compared: nothing classed, no norms
        parts.append("Normal figures: " + structure.norms_source)
    return "; ".join(parts)


def write_results_csv(path, volume, prediction, structure=None, reason: str = "", model_name: str = "",
                      vf_names=(), identify: bool = True, model_digest: str = "", model_signature: str = "",
                      synthetic_model: bool = False, patient_id: str | None = None, measured_vf=None,
                      made_with=None, study_checks=()) -> Path:
    """``prediction`` may be None when ``structure`` (a StructureReport) is given: then ``reason``
    says why there is no network result, and ``model_name`` / ``vf_names`` (the model in use) keep
    the columns the same as for an analysed scan, so exports of several scans stack.
    ``identify=False`` withholds the file name and the scan date (clinic file names often carry
    the patient's name), as the anonymised PDF report does. ``model_digest`` and ``model_signature``
    name exactly the model file and say whether a trusted key signed it ("unsigned" results carry
    that word in every volume row). ``synthetic_model``: the model in use was trained on SYNTHETIC data, said in
    the notice of a scan it did not analyse too (a prediction says it of itself): the circle scan's row alone
    did not say it (seventh walk-through).

    ``patient_id`` (the window's identity of the scan, ``StudyController.patient_line``) and ``measured_vf`` (the
    study's measured field for the scan, a VfMeasurement) fill the columns of ``MEASURED_COLUMNS``: the Results
    panel and the PDF showed both while the CSV had neither (walk-through H65, W12). Anonymised, the ID and the
    field's date are withheld; its days from the scan are kept, as the anonymised PDF keeps them.

    ``made_with``: the settings the result was made with (``state.made_with``), for ``QUALITY_CHECK_COLUMN`` and
    the notice's quality check sentence, said in every row's notice beside its figures: the one rule of
    ``pipeline.outputs.quality_check_cells``, which ``octviewer-predict``'s rows follow too (attack run 15, A15-11),
    and which names no menu or key of the window (walk-through H95, V3).

    ``study_checks``: the study's check lines for the scan (``checks.check_lines``: anonymised, by kind and count),
    said in the volume row's notice as the Results panel and the PDF say them: the CSV carried the study's measured
    VF and patient ID without the check that questions them (attack run 16, A16-13).

    Each B-scan row repeats the patient as it repeats the file, eye and date: filtered by patient, several exports
    pasted into one sheet dropped their B-scan rows (walk-through H121, U14)."""
    p, v = prediction, volume
    vf_names = list(p.vf) if p is not None else list(vf_names)
    structure_cells = report_columns(structure) if structure is not None else {}
    if structure is not None and not_measured_for_pattern(structure):  # a line scan: not "refused" (H91, W14)
        structure_cells["quality"] = not_measured_for_pattern(structure)
    if "quality" in structure_cells:  # "refused" with the check on or off, and said so (walk-through H104, X5)
        structure_cells["quality"] = refused_quality_text(structure_cells["quality"])
    measured = [c for c in STRUCTURE_COLUMNS if c not in ("laterality",)]
    row_notice = notice(v, p.synthetic_model if p is not None else synthetic_model)
    # the VF estimates' weak-estimate caveat, in the prediction's own words (model.meta), as the window and the PDF
    # give it: every row with VF values carries it, as they carry the notice (eighth walk-through)
    weak = [n for n in p.notes if is_vf_baseline_caveat(n)] if p is not None and vf_names else []
    # the indices whose estimates the evaluation found worse than the class mean, in a column of their own (the
    # notice's long sentence alone read like VFI's and MD's mild caveat, walk-through H65, W10)
    worse = " ".join(sorted(worse_vf_indices(p.notes) & set(vf_names))) if p is not None else ""
    gate, quality_note = quality_check_cells(p, getattr(structure, "quality", None), made_with)
    vf_notice = "; ".join(filter(None, [row_notice, quality_note, *weak]))
    quadrant_cells = _quadrant_cells(structure) + _sector_class_cells(structure)
    name = printable(Path(v.source).name) if v.source else ""
    common = [name, v.laterality or "", scan_date(v) if v.acquired else ""]
    if not identify:
        common = ["withheld", v.laterality or "", "withheld"]
    measured_cells = _measured_cells(patient_id, measured_vf, v.acquired, identify)
    with replaced(path) as (fd, _tmp), open(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        w = csv.writer(f)
        w.writerow(["level", "bscan", "probability", "decision", "threshold", *vf_names, "file", "eye", "date", "model",
                    "model_digest", "model_signature", *measured, *QUADRANT_COLUMNS, *SECTOR_CLASS_COLUMNS,
                    GLOBAL_CLASS_COLUMN, WORSE_COLUMN, *MEASURED_COLUMNS, QUALITY_CHECK_COLUMN, "notice"])
        if p is None:
            w.writerow([csv_cell(c) for c in ["volume", "", "", NOT_ANALYSED, "",
                                               *["" for _ in vf_names], *common, model_name, model_digest,
                                               model_signature, *[structure_cells.get(c, "") for c in measured],
                                               *quadrant_cells, "", *measured_cells, gate,
                                               "; ".join(filter(None, [row_notice, not_analysed_note(reason),
                                                                       structure_notice(structure),
                                                                       *study_checks]))]])
            return Path(path)  # the block's end renames the file into place
        clipped = [n for n in p.notes if n.startswith(VF_CLIPPED)]  # an estimate shown at its physical limit
        w.writerow([csv_cell(c) for c in ["volume", "", f"{p.probability:.4f}", p.decision, f"{p.threshold:.4f}",
                                           *[f"{p.vf[k]:.2f}" for k in vf_names], *common, p.model_name,
                                           model_digest, model_signature,
                                           *[structure_cells.get(c, "") for c in measured], *quadrant_cells,
                                           worse, *measured_cells, gate, "; ".join(filter(None, [vf_notice, *clipped,
                                                                   structure_notice(structure), *study_checks]))]])
        for i in range(p.n_bscans):
            w.writerow([csv_cell(c) for c in ["bscan", i + 1, f"{p.bscan_probability[i]:.4f}", "", "",
                                               *[f"{p.bscan_vf[k][i]:.2f}" if k in p.bscan_vf else ""
                                                 for k in vf_names],
                                               *common, "", "", "", *["" for _ in measured],
                                               *["" for _ in [*QUADRANT_COLUMNS, *SECTOR_CLASS_COLUMNS,
                                                              GLOBAL_CLASS_COLUMN]],
                                               worse, measured_cells[0], *["" for _ in MEASURED_COLUMNS[1:]],
                                               gate, vf_notice]])
    return Path(path)
