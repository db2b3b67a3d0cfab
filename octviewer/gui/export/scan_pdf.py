"""The PDF report of one analysed scan, drawn with Qt's own PDF writer (no extra dependency).

It takes the viewer state and images rendered from it (never a screen grab of the B-scan widget,
which would print the histogram too). Anonymised by default: without an explicit patient ID the
report prints neither the ID nor the scan date, and it never prints free text from the file
(DICOM ImageComments and the like). Everything from files or model metadata is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt, QUrl
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QFont,
    QFontMetricsF,
    QPageLayout,
    QPageSize,
    QPainter,
    QPalette,
    QPdfWriter,
    QTextBlockFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)

from octviewer.core import VF_INDICES, outside_normal
from octviewer.core.prediction import VF_WORSE_BESIDE, probability_and_threshold, worse_vf_indices
from octviewer.model.meta import vf_baseline_caveat
from octviewer.pipeline.outputs import quality_check_cells

from ..model.card import sensitivity_specificity
from ..structure.page import map_blank_text
from ..viewer import render
from ..viewer.results_panel import (
    BORDERLINE,
    near_threshold,
    plain,
    scan_caveats,
    scan_date,
)
from .targets import replaced

DISCLAIMER = ("For research use only. Not a medical device. Not for diagnosis or treatment decisions. "
              "Outputs are estimates from a deep network and must be read by a qualified clinician.")


def _e(value) -> str:
    return html.escape(plain(value, 120))


def structure_section(report) -> str:
    """The structure page (RNFL and optic disc): the figures drawn by structure.page.structure_page_image
    without their text, which follows as paragraphs at the report's own size (drawn into the picture it
    was ~4 pt on paper, fifth walk-through). It follows the figures where they end: forced onto a page
    of its own, it left page 2 holding the en-face alone (walk-through M6). Figures are sized to the
    text width (A4 less write_pdf's and print_'s margins, about 540 px)."""
    from ..structure.page import analysed, compared, head_text, printed_text

    lines = "<br>".join(html.escape(line) for line in printed_text(report).split("\n"))
    figure = '<p><img src="structure" width="500"></p>' if analysed(report) else ""
    # norms named only where something was classed against them (a refused line scan was "compared", eighth
    # walk-through)
    how = ("<p>Measured from the layer segmentation and compared with published population figures "
           "(not a licensed normative database).</p>" if compared(report)
           else "<p>Measured from the layer segmentation.</p>" if analysed(report) else "")
    return f"<h2>Structure: RNFL and optic disc</h2>{how}<p>{html.escape(head_text(report))}</p>{figure}<p>{lines}</p>"


def report_html(state, meta: dict, patient_id: str | None = None, sections=(), measured: str = "",
                checks: str = "") -> str:
    """``measured``: HTML the window puts under the estimates (measured VF of a study scan); ``checks``: the
    study's checks of the scan, under the decision as in the Results panel (after the estimates, the printed
    report put them where the screen no longer does: walk-through H131, W2); ``sections``: extra HTML blocks after
    the images (the structure page)."""
    v, p = state.volume, state.prediction
    warnings = []
    if p is not None and p.synthetic_model:
        warnings.append("The model was trained on SYNTHETIC data: results have no clinical validity.")
    warnings += [c for c in scan_caveats(v) if "SYNTHETIC" in c]
    if p is None:  # structure only: a circle scan, or a scan the network did not analyse
        # the predictor's reason may say "Not analysed: ..." itself: "No network estimate: Not analysed: this is ..."
        reason = (state.reason or "the network gives no result for this scan").rstrip(". ").removeprefix(
            "Not analysed: ")
        result = f"""<h2>Result</h2>
    <p>No network estimate: {html.escape(plain(reason, 400))}. {structure_follows(state.structure)}</p>{checks}"""
        # the structure page is this report's result, so it comes first and the B-scan after it:
        # B-scan first, the structure page did not fit under it and left page 1 ~40 % blank (walk-through)
        # under a heading of its own: after the structure page it began page 2 unnamed (fifth walk-through)
        figure = f"""<h2>B-scan</h2><p><img src="bscan" width="500"></p>
    <p>B-scan {state.index + 1} of {v.n_bscans}.{lines_caption(state)}</p>{localizer_html(state)}"""
        model = figure + "<h2>Model</h2><p>No model output is part of this report.</p>"
    else:
        result, model = _result_html(state, meta, measured, checks)
    return f"""<body style="color:#000000">
    <h1>OCT glaucoma screening report</h1>
    <p style="color:#b00020"><b>{html.escape(DISCLAIMER)}</b></p>
    {''.join(f'<p style="color:#b00020"><b>{html.escape(s)}</b></p>' for s in warnings)}
    <table cellpadding="3">
      <tr><td>Patient</td><td>{_e(patient_id) if patient_id else 'anonymised'}</td></tr>
      <tr><td>Eye</td><td>{_e(v.laterality or 'unknown')}</td></tr>
      <tr><td>Scan date</td><td>{_e(scan_date(v)) if patient_id else 'withheld (anonymised report)'}</td></tr>
      <tr><td>Scan</td><td>{_e(v.scan_pattern)}, {v.n_bscans} B-scan{'' if v.n_bscans == 1 else 's'},
          {_e(v.device or 'device unknown')}</td></tr>
      <tr><td>Report created</td><td>{dt.date.today().isoformat() if patient_id else 'withheld'}</td></tr>
    </table>
    {result}
    {''.join(sections)}
    {model}
    <p style="color:#555"><small>{html.escape(DISCLAIMER)}</small></p></body>
    """


def _result_html(state, meta: dict, measured: str, checks: str) -> tuple[str, str]:
    """(result and images, model) sections of a report with a network result."""
    p = state.prediction
    # outside the normal range: marked as on screen (the paper had no mark, walk-through)
    vf_caveat = vf_baseline_caveat(meta) if p.vf else ""
    # an index the evaluation found worse than the class mean: said so in place of its range (walk-through H65, W10),
    # unmarked; any other estimate marked as on screen, by the measured values' rule (W11)
    worse = worse_vf_indices(p.notes) | worse_vf_indices([vf_caveat])
    outside = {k for k, val in p.vf.items() if outside_normal(k, val, worse)}
    vf_rows = "".join(
        f"<tr><td>{VF_INDICES[k]['label']}</td><td>{val:.1f} {VF_INDICES[k]['unit']}{' ●' if k in outside else ''}</td>"
        + (f"<td><b>{VF_WORSE_BESIDE}</b></td></tr>" if k in worse else
           f"<td>{VF_INDICES[k]['normal'][0]:g} to {VF_INDICES[k]['normal'][1]:g}</td></tr>")
        for k, val in p.vf.items() if k in VF_INDICES)
    prov = meta.get("provenance") or {}
    metrics = (prov.get("test_metrics") or {}).get("image_level") or {}
    metric_text = ", ".join(f"{k} {metrics[k]:.3f}" for k in ("accuracy", "f1", "auc")
                            if isinstance(metrics.get(k), (int, float))) or "none"
    # the evaluation on independent data, when the file carries one, comes first: the own test
    # split alone reads better than the card's held-out figure
    independent = (meta.get("evaluation") or {}).get("image_level") or {}
    ci = independent.get("ci95") or {}
    independent_text = ", ".join(
        f"{k} {independent[k]:.3f}" + (f" [{ci[k][0]:.2f}, {ci[k][1]:.2f}]" if len(ci.get(k) or []) == 2 else "")
        for k in ("accuracy", "f1", "auc") if isinstance(independent.get(k), (int, float)))
    # a clinician reads a screening model by these two, as the card gives them (walk-through: paper had neither)
    data = (meta.get("evaluation") or {}).get("data") or {}
    found = sensitivity_specificity(independent, data.get("glaucoma") if data.get("volumes") == independent.get("n")
                                    else None)
    if independent_text and found is not None:
        independent_text += (f"; sensitivity {found[0]:.2f}, specificity {found[1]:.2f} "
                             f"at the threshold {p.threshold:.2f}")
    shown_p, shown_t = probability_and_threshold(p.probability, p.threshold)  # never printed equal (H104, X8)
    borderline = (f"; <b>borderline</b>: within {BORDERLINE:.2f} of the threshold"
                  if near_threshold(p.probability, p.threshold) else "")
    # the result's notes (an unverified model file, VF estimates at their physical limit, ...) go on
    # paper as they are on screen; the VF caveat is printed under the table already
    notes = "".join(f"<p><b>Note:</b> {_e(n)}</p>" for n in p.notes if n != vf_caveat)
    warning = meta.get("file_warning", "")
    # beside the verdict, not only under Structure (A13-11); in the CSV's words (``pipeline.outputs``), which name
    # no menu or key: "it is on now: Analysis > Analyse (F5) applies it" was the window's state at export time,
    # and two reports of one result differed by it (walk-through H95, V3)
    gate_note = quality_check_cells(p, getattr(state.structure, "quality", None), getattr(state, "made_with", None))[1]
    result = f"""<h2>Result (image level = this volume)</h2>
    <p>Probability of glaucoma: <b>{shown_p}</b> &nbsp; decision: <b>{_e(p.decision)}</b>
       (threshold {shown_t}){borderline}</p>
    {f"<p><b>{html.escape(gate_note)}</b></p>" if gate_note else ""}
    {checks}
    <table border="1" cellpadding="3"><tr><th>index</th><th>estimate</th><th>normal range</th></tr>{vf_rows}</table>
    {"<p>● outside the normal range</p>" if outside else ""}
    {f"<p><i>{html.escape(plain(vf_caveat, 400))}</i></p>" if vf_caveat else ""}
    {notes}
    {measured}
    <h2>Images</h2>
    {figures_html(state)}"""
    model = f"""<h2>Model</h2>
    <p>{_e(meta.get('name', p.model_name))} ({_e(meta.get('architecture', '?'))}), created
       {_e(prov.get('created', 'unknown'))}.<br>
       {f"On independent data ({_evaluated_on(data)}image level, 95% patient intervals): {independent_text}.<br>"
        if independent_text else "No evaluation on independent data is stored in the model file.<br>"}
       {f"<b>Caveat:</b> {_e(data['independence'])}.<br>" if independent_text and data.get("independence") else ""}
       Metrics reported by training, on the test split of its own training data (image level): {metric_text}.
       Patients from another source usually fare worse; see the model's card (Model menu).<br>
       Model file: {_e(meta.get("file_digest", "digest not known"))};
       {_e(meta.get("file_signature", "signature not checked"))}.</p>
    {f'<p><b>WARNING: {_e(warning)}</b></p>' if warning else ""}"""
    return result, model


#: what the en-face figure shows, by ``render.enface_content``: its caption names exactly that (it
#: said "same CAM" under an RNFL deviation map, walk-through M6)
ENFACE_CAPTIONS = {
    "cam": "En-face with the same class activation map (line: the B-scan above)",
    "deviation": "En-face with the RNFL deviation map (yellow: borderline, 1st-5th percentile; red: outside, "
                 "below the 1st; line: the B-scan above). The class activation map is not drawn on it",
    "thickness": "En-face with the RNFL thickness map (0-250 µm, purple: thin to yellow: thick; "
                 f"{map_blank_text()}; line: the B-scan above). The class activation map is not drawn on it",
    # the report's B-scan is in its B-scan section, often on the page before: "the B-scan above" (H91, W14)
    "localizer": "The device's localizer image of the scan (cyan: where the report's B-scan lies)",
    "": "En-face projection of the scan (line: the B-scan above)",
}


def structure_follows(report) -> str:
    """The sentence after "No network estimate: ...": the structure page is the report's result when it has figures;
    when it has none, "The structure measurement follows." was followed by "not measured" (a line scan, H91 W14)."""
    from ..structure.page import analysed

    if report is not None and analysed(report):
        return "The structure measurement follows."
    return "Nothing was measured of the structure either (see Structure below)."


def localizer_html(state) -> str:
    """The device's localizer (SLO) with the B-scan's place on it, for a report without the figures' en-face (a
    scan the network gives no result for: a circle scan), where the scan has one: the circle scan's report had no
    SLO image, so the circle's centring on the disc could not be checked on paper; the cube's report has its
    en-face (walk-through H65, W14)."""
    if state.volume.localizer is None:
        return ""
    return f"""<p><img src="enface" width="260"></p>
    <p>{ENFACE_CAPTIONS["localizer"]}.</p>"""


def lines_caption(state) -> str:
    """The legend of the lines drawn on the report's B-scan (a coloured bar before each name), or ""."""
    lines = render.bscan_lines(state)
    if not lines:
        return ""
    return " Lines: " + ", ".join(f'<span style="color:{colour}"><b>▬</b></span> {html.escape(name)}'
                                  for name, colour, _ in lines) + "."


def _evaluated_on(data: dict) -> str:
    """What the stored evaluation's eyes were, as the model card says it: "SYNTHETIC eyes" printed beside a
    sensitivity and specificity (the PDF gave them bare, sixth walk-through)."""
    if not data.get("patients"):
        return ""
    return (f"{data['patients']} patients, {data.get('volumes', '?')} volumes"
            + (", SYNTHETIC eyes" if data.get("synthetic") else "") + "; ")


def figures_html(state) -> str:
    """The B-scan, the en-face and the probability curve, each captioned with what is drawn on it.

    Captions go under their figures, so that a figure moved to the next page takes its caption along
    (a caption above stayed behind at the foot of the page). The en-face and the curve share one line of
    text, which a page break cannot split: in a table row the curve stayed at the foot of page 1 and the
    en-face went to page 2 under a caption saying "Left: ... Right: ..."."""
    v = state.volume
    stretch = render.bscan_stretch(state)
    aspect = f"; depth stretched {stretch:.1f}x for legibility" if stretch > 1.05 else ""
    if render.bscan_cam(state, state.index) is not None:
        bscan = (f"B-scan {state.index + 1} of {v.n_bscans} with the class activation map (red: evidence towards "
                 f"glaucoma, blue: towards normal, white: the decision threshold; fixed scale −{render.CAM_LIMIT:g} "
                 f"to +{render.CAM_LIMIT:g} logit{aspect}). The map is "
                 f"{render.cam_resolution_text(state, state.index)}"
                 + ("; it is not drawn above the ILM (the vitreous)." if render.ilm_row(state, state.index) is not None
                    else "."))
        legend = f'<br><img src="legend" width="200"> &nbsp; −{render.CAM_LIMIT:g} … 0 … +{render.CAM_LIMIT:g}'
    else:
        bscan, legend = f"B-scan {state.index + 1} of {v.n_bscans} (class activation map not shown{aspect}).", ""
    content = render.enface_content(state)
    enface = ENFACE_CAPTIONS[content]
    if content == "thickness":  # the dark-grey edge patches drawn on the page's map too (H95, V1; H99)
        from ..structure.page import edge_artefacts, map_edge_text

        if edge_artefacts(state.structure.thickness_map_um).any():
            enface = enface.replace("; line: the B-scan above", f"; {map_edge_text()}; line: the B-scan above")
    return f"""<p><img src="bscan" width="500">{legend}</p>
    <p>{bscan}{lines_caption(state)}</p>
    <p><img src="enface" width="160">&nbsp;<img src="curve" width="330"></p>
    <p>Left: {enface[0].lower() + enface[1:]}. Right: P(glaucoma) per B-scan, numbered from 1.</p>"""


def build_document(state, images: dict, meta: dict, patient_id: str | None = None, sections=(),
                   measured: str = "", checks: str = "") -> QTextDocument:
    """The report as a QTextDocument; ``images``: QImages named bscan, enface, curve, legend."""
    doc = QTextDocument()
    for name, image in images.items():
        doc.addResource(QTextDocument.ImageResource, QUrl(name), image)
    doc.setDefaultStyleSheet("body, p, td, th, h1, h2 { color: #000000; }")  # black on paper, whatever the app theme
    doc.setHtml(report_html(state, meta, patient_id, sections, measured, checks))
    return doc


def withhold_creation_time(path) -> None:
    """Blank the PDF's creation and modification times (Info dictionary and XMP metadata): an anonymised report
    says "report created: withheld" on the page, and Qt writes the time into the file regardless. Each entry is
    overwritten by as many blanks, so the file's cross-reference offsets stay valid and the entries are gone; a
    placeholder date (2000-01-01, before) showed as "Created 01/01/2000" in a viewer's properties and could file
    the report under that year (walk-through H91, W15)."""
    data = Path(path).read_bytes()
    blank = lambda m: b" " * len(m.group(0))  # noqa: E731
    data = re.sub(rb"/(?:CreationDate|ModDate) ?\([^)]*\)", blank, data)
    start, end = data.find(b"<x:xmpmeta"), data.find(b"</x:xmpmeta>")
    if 0 <= start < end:  # the XMP packet only: page streams are left byte for byte
        packet = re.sub(rb"[\w-]+:(?:CreateDate|ModifyDate|MetadataDate)=\"[^\"]*\"", blank, data[start:end])
        packet = re.sub(rb"<([\w-]+:(?:CreateDate|ModifyDate|MetadataDate))>[^<]*</\1>", blank, packet)
        data = data[:start] + packet + data[end:]
    Path(path).write_bytes(data)


def _printed_layout(doc: QTextDocument, writer: QPdfWriter) -> tuple[QTextDocument, float]:
    """A copy of ``doc`` laid out as ``QTextDocument.print_`` lays it out on ``writer`` (the writer's
    page, a 2 cm margin at 96 dpi around it, as Qt's print_ sets for a document without pages), and
    the page height in the copy's units."""
    copy = doc.clone()
    copy.documentLayout().setPaintDevice(writer)
    fmt = copy.rootFrame().frameFormat()
    margin = int(2 / 2.54 * 96)
    for set_margin in (fmt.setLeftMargin, fmt.setRightMargin, fmt.setTopMargin, fmt.setBottomMargin):
        set_margin(margin)
    copy.rootFrame().setFrameFormat(fmt)
    copy.setPageSize(QSizeF(writer.width(), writer.height()))
    return copy, float(writer.height())


def _is_figure(block) -> bool:
    """The block holds an image or is a table's cell: what a heading introduces."""
    if QTextCursor(block).currentTable() is not None:
        return True
    fragments = block.begin()
    while not fragments.atEnd():
        if fragments.fragment().charFormat().isImageFormat():
            return True
        fragments += 1
    return False


def _split_table_end(layout, block, height: float) -> int | None:
    """The page of the last row of the table ``block`` is in, when that table starts on an earlier page and
    would fit on one page whole; else None. A table a heading introduces is kept whole as its first row is
    kept with the heading: the OU report's asymmetry table printed its last row alone overleaf (ninth
    walk-through)."""
    table = QTextCursor(block).currentTable()
    if table is None:
        return None
    frame = layout.frameBoundingRect(table)
    if frame.height() >= height * 0.8:  # as tall as a page (with the page's margins): it has to split
        return None
    first, last = int(frame.top() // height), int((frame.bottom() - 1) // height)
    return last if last > first else None


def _stranded_heading(doc: QTextDocument, height: float):
    """The first heading printed at a page's foot without what follows it: the next block's first line
    (and, when that is a line or two of text, the first line of the block after it: the table or image
    the heading introduces; a figure after a few short paragraphs counts too, fifth walk-through: the
    structure page's heading and intro printed alone, its figure overleaf) is on a later page, or a table it
    introduces that would fit on one page is split (``_split_table_end``). None if there is none."""
    layout = doc.documentLayout()

    def first_lines(block, count):
        """The page of the first line of the next ``count`` blocks that print anything, with their line
        counts and whether each is a figure (a table whose rows a page break splits counts from its last row's
        page), up to the next heading: what follows that is its own (the OU report's "Both eyes" heading, its image
        in its own block, took the asymmetry table under the next heading for its figure and moved with it)."""
        found = []
        while block.isValid() and len(found) < count:
            rect, lines = layout.blockBoundingRect(block), block.layout()
            if rect.height() > 0 and lines.lineCount():
                page = int((rect.top() + lines.lineAt(0).rect().top()) // height)
                found.append((max(page, _split_table_end(layout, block, height) or page), lines.lineCount(),
                              _is_figure(block)))
                if block.blockFormat().headingLevel() > 0:
                    break
            block = block.next()
        return found

    block = doc.begin()
    while block.isValid():
        fmt = block.blockFormat()
        if (fmt.headingLevel() > 0 and block.layout().lineCount()
                and fmt.pageBreakPolicy() != QTextFormat.PageBreak_AlwaysBefore):  # (moved already)
            page = int(layout.blockBoundingRect(block).top() // height)
            following = first_lines(block.next(), 4)
            kept = following[:1] if following and following[0][1] > 2 else following[:2]
            figure = next((k for k, (_, _, is_figure) in enumerate(following) if is_figure), None)
            if figure is not None and sum(n for _, n, _ in following[:figure]) <= 8:  # a short lead-in
                kept = following[:figure + 1]
            if any(p > page for p, _, _ in kept):
                return block
        block = block.next()
    return None


def keep_headings_with_next(doc: QTextDocument, writer: QPdfWriter) -> None:
    """Start a new page at each heading that would print at a page's foot with its table or text on the
    next page (fourth walk-through: a heading alone at the bottom, its table overleaf). Qt's text
    layout has no 'keep with next': the document is laid out as it will print and a page break is set
    before each stranded heading, one at a time (each moves what follows)."""
    for _ in range(20):
        copy, height = _printed_layout(doc, writer)
        stranded = _stranded_heading(copy, height)
        if stranded is None:
            return
        fmt = QTextBlockFormat()
        fmt.setPageBreakPolicy(QTextFormat.PageBreak_AlwaysBefore)
        QTextCursor(doc.findBlockByNumber(stranded.blockNumber())).mergeBlockFormat(fmt)


def running_header(patient_id: str | None, eye: str, date: str, key: str) -> str:
    """The line at the head of every page of a report: identified, the patient ID, the eye and the scan date;
    anonymised, the pseudonymous ``key`` and the eye only (no ID, no date). Pages after the first carried only a
    page number: a printed page of sectors, once separated, could not be attributed (walk-through H65, W15)."""
    if patient_id:
        return f"Patient {plain(patient_id, 60)}  ·  {eye or 'eye unknown'}  ·  {date or 'date unknown'}"
    return f"Anonymised report  ·  key {key or 'none'}  ·  {eye or 'eye unknown'}"


def report_key(text: str, prefix: str) -> str:
    """A pseudonymous key for an anonymised report's running header (``core.pseudonym.keyed_digest``, this
    installation's salt: only its holder can link it back), or "" when no salt can be read or made."""
    from octviewer.core.pseudonym import SaltError, keyed_digest

    try:
        return f"{prefix}-{keyed_digest(text)[:16]}" if text else ""
    except (SaltError, OSError):
        return ""


def print_pages(doc: QTextDocument, writer: QPdfWriter, running: str = "") -> None:
    """Paint ``doc`` page by page as ``_printed_layout`` lays it out (the layout ``keep_headings_with_next``
    decided its page breaks on), with ``running`` at the head of every page and "page x of y" at its foot.
    QTextDocument.print_ draws a bare page number and nothing else (walk-through H65, W15)."""
    copy, height = _printed_layout(doc, writer)
    pages = max(1, copy.pageCount())
    margin = copy.rootFrame().frameFormat().topMargin()
    font = QFont(copy.defaultFont())
    font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
    line = QFontMetricsF(font, writer).height()
    painter = QPainter(writer)
    try:
        for page in range(pages):
            if page:
                writer.newPage()
            painter.save()
            painter.translate(0, -page * height)
            context = QAbstractTextDocumentLayout.PaintContext()
            context.clip = QRectF(0, page * height, writer.width(), height)
            context.palette.setColor(QPalette.Text, Qt.black)
            copy.documentLayout().draw(painter, context)
            painter.restore()
            painter.setFont(font)
            painter.setPen(Qt.black)
            width = writer.width() - 2 * margin
            if running:
                painter.drawText(QRectF(margin, max(0.0, margin / 2 - line), width, line), Qt.AlignLeft, running)
            painter.drawText(QRectF(margin, height - margin / 2, width, line), Qt.AlignRight,
                             f"page {page + 1} of {pages}")
    finally:
        painter.end()


def write_pdf(doc: QTextDocument, path, title: str, anonymised: bool, creator: str = "", running: str = "") -> str:
    """Print ``doc`` to a PDF: A4 portrait, 15 mm margins, 150 dpi, for every report of the viewer;
    an anonymised one carries no creation time in its metadata either. ``running``: the line at the head
    of every page (``running_header``).

    Raises OSError unless the PDF is really at ``path``: Qt's PDF writer fails without a word (a
    folder, /proc, a missing folder), so the report is written to a new file beside the target,
    checked, and only then put in its place; a failed export leaves an existing file as it was.
    The file is owner-only (0600): a report may carry the patient ID. ``creator``: the PDF's creator
    text (an identified scan report names its scan there, ``pacs.results.report_reference``)."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder")
    with replaced(target, prefix=".report-") as (fd, tmp):
        os.close(fd)
        writer = QPdfWriter(tmp)
        writer.setPageLayout(QPageLayout(QPageSize(QPageSize.A4), QPageLayout.Portrait, QMarginsF(15, 15, 15, 15)))
        writer.setResolution(150)
        writer.setTitle(title)
        if creator:
            writer.setCreator(creator)
        keep_headings_with_next(doc, writer)
        print_pages(doc, writer, running)
        del writer  # the file is complete once the writer is gone
        with open(tmp, "rb") as written:
            if written.read(5) != b"%PDF-":
                raise OSError(f"the PDF writer could not write to {target.parent}")
        if anonymised:
            withhold_creation_time(tmp)
    return str(target)


def report_analysis_settings(state) -> str:
    """The analysis settings the report's figures were made with (``pacs.results.report_settings``'s words): the
    result's own (``state.made_with``), never the window's ticks, which apply to the next analysis: after Analysis >
    Quality check was toggled, or a result made under other settings came back from the results store, a report
    named settings its figures were not made with, and ``octviewer-pacs send --pdf`` refused a good report or filed
    one beside an SR made otherwise (A13-11). "" where they are not known: the reference then names none, and send
    refuses the report."""
    made_with = getattr(state, "made_with", None)
    return ", ".join(made_with) if made_with else ""


def write_report(path: str, state, images: dict, meta: dict, patient_id: str | None = None, sections=(),
                 measured: str = "", checks: str = "") -> str:
    """Write the PDF; ``images`` are rendered from the state (see export/scan_exports.py)."""
    from octviewer.pacs.results import report_reference

    creator = (report_reference(state.volume.source, meta.get("file_digest", ""),  # the scan and the model (A12-13)
                                report_analysis_settings(state))  # and the settings of its figures (A13-11)
               if patient_id is not None and state.volume.source else "")
    v = state.volume
    running = running_header(patient_id, v.laterality, f"scan {scan_date(v)}",
                             "" if patient_id else report_key(os.path.abspath(v.source) if v.source else "", "vol"))
    return write_pdf(build_document(state, images, meta, patient_id, sections, measured, checks), path,
                     "OCT glaucoma screening report (research use only)", anonymised=patient_id is None,
                     creator=creator, running=running)
