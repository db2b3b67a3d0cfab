"""Every menu entry and keyboard shortcut of the main window, in one table.

Slots are called with no arguments: ``QAction.triggered`` passes a ``checked`` flag, and a slot
that takes an optional path must never receive it (File > Export PDF would get ``False`` as its
path). The Help > Keyboard shortcuts list is generated from this table, so it cannot drift.
"""

from __future__ import annotations

import sys

from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from .dialogs import as_literal, ask
from .pacs import pacs_of
from .viewer.state import AXIAL_MODES, LEVEL_PRESETS

#: Apple's GPU back end exists only on macOS: elsewhere "mps" could only fail
DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu") if sys.platform == "darwin" else ("auto", "cuda", "cpu")


def devices_here() -> tuple[str, ...]:
    """DEVICE_CHOICES less the GPUs this computer does not have: CUDA offered without a GPU could only
    fail with a warning (walk-through)."""
    import torch

    present = {"cuda": torch.cuda.is_available(),
               "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    return tuple(name for name in DEVICE_CHOICES if present.get(name, True))
AXIAL_LABELS = {"fit": "Fit B-scan to view", "physical": "Physical aspect (µm)", "pixel": "1:1 pixels"}


def device_entries() -> list[tuple[str, str]]:
    """(choice, menu text) of the Device menu. A CPU that does bf16 in hardware is offered twice, the
    fast path and exact fp32 one click away; elsewhere the CPU runs exact fp32 only."""
    from octviewer.model.precision import cpu_has_native_bf16

    entries = [(name, name) for name in devices_here() if name != "cpu"]
    if cpu_has_native_bf16():
        return [*entries, ("cpu", "CPU (bf16)"), ("cpu-fp32", "CPU (exact fp32)")]
    return [*entries, ("cpu", "CPU (exact fp32)")]


def build_menus(w) -> dict[str, QAction]:
    actions: dict[str, QAction] = {}
    s = w.state

    def act(menu, name, text, slot, key=None):
        a = QAction(text, w)
        if key:
            a.setShortcut(QKeySequence(key))
        a.triggered.connect(lambda _checked=False: slot())
        menu.addAction(a)
        actions[name] = a
        return a

    bar = w.menuBar()
    f = bar.addMenu("&File")
    act(f, "open", "&Open…", w.open_dialog, QKeySequence.Open)
    act(f, "open_folder", "Open &folder…", w.open_folder_dialog)
    w.recent_menu = f.addMenu("Open &recent")
    act(f, "open_study_folder", "Open stud&y folder…", lambda: w.study.open_folder(), "Ctrl+Shift+O")
    act(f, "open_study_manifest", "Open study &manifest…", lambda: w.study.open_manifest())
    act(f, "open_pacs", "Open from PAC&S…", lambda: pacs_of(w).open_dialog())
    act(f, "export_pdf", "Export &PDF report…", w.exports.pdf, "Ctrl+P")
    act(f, "export_ou", "Export &OU report…", lambda: w.study.export_ou_report())
    act(f, "export_csv", "Export results as &CSV…", w.exports.csv, "Ctrl+E")
    act(f, "send_pacs", "Send results to PACS…", lambda: pacs_of(w).send())
    act(f, "pacs_settings", "PACS se&ttings…", lambda: pacs_of(w).preferences())
    act(f, "quit", "&Quit", w.close, QKeySequence.Quit)

    v = bar.addMenu("&View")
    # ticked while shown (follow_state): an unticked entry named "Toggle" never said whether it was on
    act(v, "toggle_cam", "Show &CAM (B-scan and en-face)",
        lambda: s.update_settings(show_cam=not s.settings.show_cam), "C").setCheckable(True)
    act(v, "toggle_layers", "Show &layer segmentation lines",
        lambda: s.update_settings(show_layers=not s.settings.show_layers), "L").setCheckable(True)
    act(v, "reset_zoom", "Reset &zoom", w.bscan.fit_view, "Z")
    axial = v.addMenu("&Axial stretch")
    group = QActionGroup(w)
    for mode in AXIAL_MODES:
        a = act(axial, f"axial_{mode}", AXIAL_LABELS[mode], lambda m=mode: s.update_settings(axial_mode=m))
        a.setCheckable(True)
        group.addAction(a)
    act(v, "axial_next", "Next axial stretch", lambda: s.update_settings(
        axial_mode=AXIAL_MODES[(AXIAL_MODES.index(s.settings.axial_mode) + 1) % len(AXIAL_MODES)]), "A")
    act(v, "cam_more", "CAM more opaque", lambda: s.update_settings(cam_opacity=s.settings.cam_opacity + 0.1), "]")
    act(v, "cam_less", "CAM more transparent", lambda: s.update_settings(cam_opacity=s.settings.cam_opacity - 0.1),
        "[")
    contrast = v.addMenu("C&ontrast")
    act(contrast, "contrast_more", "More contrast", lambda: s.adjust_contrast(0.8), "K")
    act(contrast, "contrast_less", "Less contrast", lambda: s.adjust_contrast(1.25), "Shift+K")
    act(contrast, "brighter", "Brighter", lambda: s.adjust_brightness(10), "B")
    act(contrast, "darker", "Darker", lambda: s.adjust_brightness(-10), "Shift+B")
    for k, (name, levels) in enumerate(LEVEL_PRESETS.items(), start=1):
        act(contrast, f"preset_{k}", f"Preset: {name}", lambda lv=levels: s.update_settings(levels=lv), str(k))
    nav = v.addMenu("&Go to")
    act(nav, "next", "Next B-scan", lambda: s.set_index(s.index + 1), "Down")
    act(nav, "previous", "Previous B-scan", lambda: s.set_index(s.index - 1), "Up")
    act(nav, "next10", "Ten B-scans on", lambda: s.set_index(s.index + 10), "PgDown")
    act(nav, "previous10", "Ten B-scans back", lambda: s.set_index(s.index - 10), "PgUp")
    act(nav, "first", "First B-scan", lambda: s.set_index(0), "Home")
    act(nav, "last", "Last B-scan", lambda: s.set_index(s.n_bscans - 1), "End")
    segmentation = v.addMenu("&Segmentation")
    group = QActionGroup(w)
    for source, text in (("vendor", "The file's own (vendor) when present"), ("own", "octviewer's own")):
        a = act(segmentation, f"segmentation_{source}", text, lambda src=source: w.controller.set_segmentation(src))
        a.setCheckable(True)
        group.addAction(a)
    # one en-face map at a time (the state holds which): their yellows mean different things
    for name, text, key, shown in (("rnfl_map", "RNFL &thickness map (en-face)", "T", "thickness"),
                                   ("rnfl_deviation", "RNFL &deviation map (en-face)", "Shift+T", "deviation")):
        act(v, name, text, lambda n=name, m=shown: s.update_settings(
            enface_map=m if actions[n].isChecked() else ""), key).setCheckable(True)
    w.panels_menu = v.addMenu("&Panels")

    a = bar.addMenu("&Analysis")
    act(a, "analyse", "&Analyse", w.controller.analyse, "F5")
    act(a, "cancel", "&Cancel (opening, decoding or analysis)", w.controller.cancel, "Esc")
    act(a, "quality_gate", "&Quality check before analysis (refuse unreadable scans)",
        lambda: s.update_options(gate=actions["quality_gate"].isChecked())).setCheckable(True)
    act(a, "clear_results", "Forget &remembered results…", lambda: clear_results(w))
    device = a.addMenu("&Device")
    group = QActionGroup(w)  # the choice in force is ticked ("auto" stays "auto" whatever it resolved to)
    for name, text in device_entries():
        a_device = act(device, f"device_{name}", text, lambda n=name: w.models.set_device(n))
        a_device.setCheckable(True)
        group.addAction(a_device)

    m = bar.addMenu("&Model")
    act(m, "load_model", "&Load model…", w.models.load_model_dialog)
    act(m, "retrain", "&Retrain…", w.models.open_retrain)
    act(m, "about_model", "About this &model (model card)", w.models.about_model)

    h = bar.addMenu("&Help")
    act(h, "about", "&About octviewer", w.about)
    act(h, "shortcuts", "&Keyboard shortcuts", w.show_shortcuts, "F1")
    act(h, "reading_guide", "&Reading the results", w.show_reading_guide)
    w.help_menu = h
    return actions


def follow_state(actions: dict[str, QAction], state) -> None:
    """The menus' ticks show what the state holds (CAM and lines shown, the axial stretch, the en-face
    map, the segmentation source, the quality gate), whoever changed it; setting a tick from the state never
    triggers its action again."""
    def sync():
        s, o = state.settings, state.options
        for name, checked in ([(f"axial_{m}", s.axial_mode == m) for m in AXIAL_MODES]
                              + [("toggle_cam", s.show_cam), ("toggle_layers", s.show_layers)]
                              + [("rnfl_map", s.enface_map == "thickness"),
                                 ("rnfl_deviation", s.enface_map == "deviation"),
                                 ("quality_gate", o.gate)]
                              + [(f"segmentation_{src}", o.segmentation == src) for src in ("vendor", "own")]):
            action = actions[name]
            if action.isChecked() != checked:
                blocked = action.blockSignals(True)
                action.setChecked(checked)
                action.blockSignals(blocked)
    state.events.display.connect(sync)
    state.events.options.connect(sync)
    sync()


def clear_results(w) -> None:
    """Analysis > Forget remembered results: empty the results store, after asking."""
    from PySide6.QtWidgets import QMessageBox

    store = w.tasks.store
    if store is None:
        QMessageBox.information(w, "Remembered results", "No results store is in use: nothing is remembered.")
        return
    if not ask(w, "Remembered results", "Forget every remembered analysis? Scans opened again, "
                  "and the OU and trend views, are then analysed afresh."):
        return
    try:
        removed = store.clear()
    except Exception as exc:  # sqlite3.Error: the store is busy or damaged; say so, keep running
        QMessageBox.warning(w, "Remembered results", as_literal(f"The results store could not be emptied: {exc}"))
        return
    w.statusBar().showMessage(f"Forgot {removed} remembered result(s).", 8000)


def reading_guide_text() -> str:
    """Help > Reading the results: what the colours, marks and words on screen and in the reports mean. A clinician
    met "~", "●", a threshold and grey sectors with no key in the Help menu (walk-through H65, W17). Built from the
    constants the panels draw with, so it cannot drift from them."""
    from octviewer.core.prediction import OUTSIDE_KEY, VF_WORSE_BESIDE
    from octviewer.structure.normative import UNCLASSED_SECTORS
    from octviewer.study.vf import VF_COMPARE_MAX_DAYS

    from .structure.page import map_blank_text, map_edge_text
    from .structure.panel import COLOUR_KEY
    from .study.browser import IDENTITY_CHECKS
    from .viewer.results_panel import BORDERLINE, DISCLAIMER, borderline_words

    colours = "\n".join(f"  {colour}: {text}" for colour, (_, text) in zip(("green", "yellow", "red"), COLOUR_KEY))
    # one line a paragraph: the dialog wraps them at its width (hard breaks inside gave ragged half-lines, H82 W17)
    return "\n".join([
        "Glaucoma estimate",
        "  P(glaucoma) is the network's calibrated probability for the volume; the decision reads \"glaucoma\" at or "
        "above the model's threshold (Model > About this model says how it was chosen). The P(glaucoma) curve gives "
        "each B-scan's probability (click it to go to that B-scan). The CAM (View > Show CAM) shows where the network "
        "looked; it is no lesion map.",
        # the verdict's "borderline" is not the RNFL colours' (1st-5th percentile) below (walk-through H121, U7)
        f"  \"{borderline_words(0.5, 0.5)}\" (orange, under the verdict): P lies less than {BORDERLINE:.2f} from the "
        "threshold, on either side, so a repeat scan could give the other decision; read it with the B-scans and the "
        "structure (P and the threshold get a third or fourth decimal where two would print them equal). It is not "
        f"the RNFL colour \"{COLOUR_KEY[1][1]}\" (yellow, percentiles) under Structure.",
        "",
        "Visual-field estimates (VFI, MD, PSD)",
        f"  Estimated from the OCT, not measured. Beside each: the normal range, or \"{VF_WORSE_BESIDE}\" where the "
        "model's own evaluation found the estimate worse than guessing the class mean.",
        f"  {OUTSIDE_KEY}.",
        f"  A measured field from a study is set beside the estimate only within {VF_COMPARE_MAX_DAYS} days of the "
        "scan, with its test date (and its distance from the scan beyond the visit's own days); otherwise it reads "
        "\"not compared\" with the reason.",
        "",
        "Structure (RNFL sectors, quadrants, clock hours)",
        colours,
        f"  grey: not classified ({', '.join(UNCLASSED_SECTORS)} and the clock hours: µm only)",
        "  ~   approximate: the value rests on A-scans where the segmentation is unsure (vessel shadows, low signal, "
        "the disc margin); shown rounded to 5 µm (~55), so it is not read as precise; the results CSV keeps the "
        "measured figure and names it in rnfl_uncertain_sectors, rnfl_uncertain_quadrants or "
        "rnfl_uncertain_clock_hours. The TSNIT profile is dashed there.",
        "  RNFL thickness map (View, T): the thickness on the en-face, purple thin to yellow thick (250 µm or more); "
        f"{map_blank_text()} (the rim tissue bending into the disc is not nerve fibre layer); {map_edge_text()}: "
        "a patch that thick at the grey band's edge or in a corner of the cube, away from the arcuate bundles, is "
        "more likely the segmentation failing there than thick tissue (its figures are kept as measured): read it on "
        "the B-scan. RNFL deviation map (Shift+T): yellow borderline, red outside, in the ring around the disc where "
        "the normal figures apply.",
        "  The normal ranges are published population figures, not age-adjusted.",
        "",
        # the Study panel's "Check (used as listed)" had no key anywhere in the application (walk-through H129, V5)
        "Study checks (File > Open study folder)",
        "  Left out: files the study does not use, each with its reason (unreadable, another person's field, a scan "
        "filed in two places). Check (used as listed): scans that are used, with something to confirm first; the "
        "same check stands on the scan's Results panel, the OU view, the Trend and the reports.",
        f"  {IDENTITY_CHECKS['people'].capitalize()}: under one patient ID, another issuer of the ID, birth date or "
        "name. The check says which visits name which person: confirm in the clinic's record before comparing eyes "
        "or visits. The Trend flags no change as significant.",
        f"  {IDENTITY_CHECKS['scripts'].capitalize()} (e.g. Hangul and Latin): such names are not compared here; one "
        "person's name from two devices, or twins under one ID. The check says which visits write which script: "
        "confirm in the clinic's record. The Trend flags changes as usual.",
        "  A measured VF naming the patient otherwise than the scans: its slopes in the Trend are not flagged; the "
        "scans' are. Compare the field's printout with the clinic's record.",
        # what to do once confirmed, which the section did not say (walk-through H131, W6)
        "  Where the record shows two people, give each their own patient ID in a study manifest (File > Open study "
        "manifest…; docs/study.md gives its columns), so that their scans are no longer one patient's. Where it "
        "shows one person, nothing needs changing; the check stays as a reminder.",
        "",
        "Quality",
        "  A scan that fails the quality check (signal, field of view, the retina leaving the frame) is not analysed "
        "by the network; the Results panel says which check failed.",
        "",
        "SYNTHETIC",
        "  A model trained on synthetic eyes, or a synthetic scan, is marked SYNTHETIC wherever its results appear.",
        "",
        DISCLAIMER,
    ])


def shortcuts_text(actions: dict[str, QAction]) -> str:
    rows = [(a.shortcut().toString(QKeySequence.NativeText), a.text().replace("&", ""))
            for a in actions.values() if not a.shortcut().isEmpty()]
    rows += [("Wheel", "Previous / next B-scan"), ("Ctrl+Wheel", "Zoom the B-scan"),
             ("Click (en-face or curve)", "Go to that B-scan")]
    return "\n".join(f"{k}  —  {t}" for k, t in rows)  # no column padding: the dialog's font is proportional
