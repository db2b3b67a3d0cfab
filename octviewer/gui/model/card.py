"""A readable model card from a model file's metadata (Help > About model): what the model is,
what it was trained on, how it decides and how well it did, as plain lines of text."""

from __future__ import annotations


def meta_dict(meta) -> dict:
    """Model metadata as a plain dict, whether the loader gives a dict or a typed ModelMeta."""
    if hasattr(meta, "to_dict"):
        return meta.to_dict()
    return dict(meta or {})


def _fmt(value) -> str:
    """A metadata value as text. Floats below 0.01 (a learning rate, a weight decay) in powers of ten
    ("1e-4"): three decimals printed 0.0001 as "0.000"."""
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.01:
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return " ".join(str(value).split())


def _section(lines: list[str], title: str, d: dict, indent: str = "  ") -> None:
    if not d:
        return
    lines.append(title)
    for key, value in d.items():
        if isinstance(value, dict):
            _section(lines, f"{indent}{key}:", value, indent + "  ")
        else:
            lines.append(f"{indent}{key}: {_fmt(value)}")


def _interval(ci: dict, key: str, digits: int = 2) -> str:
    pair = (ci or {}).get(key) or []
    return f" [{pair[0]:.{digits}f}, {pair[1]:.{digits}f}]" if len(pair) == 2 else ""


def _data_lines(prov: dict) -> list[str]:
    """The splits' sizes, each with what it was used for. A recalibrated model's calibration and threshold are no
    longer the validation split's: "validation (calibration, threshold...): 162 volumes" stood above "Platt scaling
    and threshold refitted on 343 volumes of another cohort" (ninth walk-through)."""
    splits = ((prov.get("data") or {}).get("splits")) or {}
    refitted = isinstance(prov.get("recalibration"), dict)
    val = ("validation (model choice; calibration and threshold since refitted on another cohort, 'afterwards')"
           if refitted else "validation (calibration, threshold, model choice)")
    lines = []
    for name, label in (("train", "training"), ("val", val), ("test", "test")):
        d = splits.get(name) or {}
        if d.get("patients") is not None:
            lines.append(f"  {label}: {d['patients']} patients, {d.get('volumes', '?')} volumes "
                         f"({d.get('glaucoma', '?')} glaucoma)")
    return lines


def sensitivity_specificity(level: dict, positives) -> tuple[float, float, str] | None:
    """(sensitivity, specificity, how known) at the model's threshold: as stored, else worked out from
    the stored accuracy, F1 and number of volumes with the split's number of glaucoma volumes (they fix
    the confusion matrix: TP = F1 n (1 - accuracy) / (2 (1 - F1))); None when neither is possible. A
    clinician reads a screening model by these two (walk-through: the card had neither)."""
    if isinstance(level.get("sensitivity"), (int, float)) and isinstance(level.get("specificity"), (int, float)):
        return float(level["sensitivity"]), float(level["specificity"]), "stored"
    acc, f1, n = level.get("accuracy"), level.get("f1"), level.get("n")
    if not all(isinstance(v, (int, float)) for v in (acc, f1, n, positives)) or not 0 < positives < n:
        return None
    negatives = n - positives
    tp = positives if f1 >= 1 else round(f1 * n * (1 - acc) / (2 * (1 - f1)))
    fp = round(tp + negatives - acc * n)
    if not (0 <= tp <= positives and 0 <= fp <= negatives):
        return None  # the figures do not fit these counts: say nothing rather than something wrong
    how = f"worked out from the accuracy, F1 and {positives} glaucoma volumes"
    return tp / positives, (negatives - fp) / negatives, how


def _metric_lines(metrics: dict, positives=None, threshold=None) -> list[str]:
    """The test split's figures in words and units, each with its patient-cluster interval;
    ``positives``: the glaucoma volumes among them (for sensitivity and specificity)."""
    lines = []
    image = metrics.get("image_level") or {}
    if isinstance(image.get("auc"), (int, float)):
        ci = image.get("ci95") or {}
        lines.append(f"  AUC {image['auc']:.3f}{_interval(ci, 'auc', 3)} ({image.get('n', '?')} volumes; "
                     "95% patient-cluster interval)")
    found = sensitivity_specificity(image, positives)
    if found is not None:
        sens, spec, how = found
        ci = image.get("ci95") or {}
        at = f" at the threshold {threshold:.3f}" if isinstance(threshold, (int, float)) else " at the threshold"
        lines.append(f"  sensitivity {sens:.2f}{_interval(ci, 'sensitivity')}, specificity {spec:.2f}"
                     f"{_interval(ci, 'specificity')}{at}" + ("" if how == "stored" else f" ({how})"))
    parts = [f"{label} {image[key]:.3f}" for key, label in (("accuracy", "accuracy"), ("f1", "F1"),
                                                             ("ece", "calibration error (ECE)"),
                                                             ("brier", "Brier score"))
             if isinstance(image.get(key), (int, float))]
    if parts:
        lines.append("  " + ", ".join(parts))
    floor = image.get("ece_floor")
    if isinstance(floor, list) and len(floor) == 2 and all(isinstance(v, (int, float)) for v in floor):
        lines.append(f"  a perfectly calibrated model would read ECE {floor[0]:.3f} on this many eyes (95% of draws "
                     f"below {floor[1]:.3f}): an ECE below that is within the test set's noise")
    from octviewer.core import VF_INDICES

    for name, row in (metrics.get("vf_mae") or {}).items():
        if not isinstance(row, dict) or not isinstance(row.get("mae"), (int, float)):
            continue
        spec = VF_INDICES.get(name, {"label": name, "unit": ""})
        base = row.get("class_mean_mae")
        text = (f"  {spec['label']} mean absolute error {row['mae']:.2f} {spec['unit']}"
                f"{_interval(row.get('ci95'), 'mae')}")
        if isinstance(base, (int, float)):
            diff = row.get("mae_minus_class_mean", row["mae"] - base)
            pair = (row.get("ci95") or {}).get("mae_minus_class_mean") or []
            if len(pair) == 2:  # the interval of the difference decides, not the point figures
                verdict = ("better than" if pair[1] < 0 else "worse than" if pair[0] > 0
                           else "not distinguishable from")
                text += (f"; class-mean baseline {base:.2f} {spec['unit']}, difference {diff:+.2f} "
                         f"[{pair[0]:+.2f}, {pair[1]:+.2f}]: {verdict} the baseline")
            else:
                verdict = "lower than" if row["mae"] < base else "higher than" if row["mae"] > base else "equal to"
                text += f", {verdict} the class-mean baseline's ({base:.2f} {spec['unit']})"
        lines.append(text)
    return lines


def start_warning(prov: dict) -> str:
    """The warning of a model fine-tuned from a file nobody here vouched for (``train.start_record``), or "":
    its own signature vouches for the fine-tune, not for the weights it began from (attack run 9, A9-12)."""
    start = (prov.get("selection") or {}).get("fine_tuned_from") if isinstance(prov, dict) else None
    if not isinstance(start, dict):
        return ""
    if start.get("trusted") is False:
        return (f"it was fine-tuned from a model file that was {_fmt(start.get('signature', 'not verified'))} "
                f"(sha256:{str(start.get('digest', ''))[:16]}): nothing vouches for the weights it started from, "
                "whoever signed this file")
    origin = start.get("untrusted_origin")  # further back: A -> B -> C (attack run 10, A10-4)
    if not isinstance(origin, dict):
        return ""  # trusted, or recorded before the start's signature was (nothing known)
    return (f"it descends, by fine-tuning, from a model file that was {_fmt(origin.get('signature', 'not verified'))} "
            f"(sha256:{str(origin.get('digest', ''))[:16]}): nothing vouches for the weights its line started from, "
            "whoever signed this file")


def identity(model) -> dict:
    """The model file's digest and signature as plain fields beside its metadata (``model_meta``):
    what names exactly this file in the card, the PDF and the CSVs, and whether anyone vouches for it,
    for its start model too where it was fine-tuned (``start_warning``)."""
    warning = "; ".join(w for w in (model.trust.warning, start_warning(getattr(model.meta, "provenance", None))) if w)
    return {"file_digest": model.short_digest, "file_signature": model.trust.text(), "file_warning": warning}


def model_file_lines(m: dict) -> list[str]:
    """Digest and signature lines (the warning of an unverified file in words a reader acts on)."""
    if "file_digest" not in m:
        return ["  digest: not known"]
    lines = [f"  digest: {m['file_digest']} (SHA-256 of its weights and metadata)",
             f"  signature: {m.get('file_signature', 'unknown')}"]
    if m.get("file_warning"):
        lines.append(f"  WARNING: {m['file_warning']}")
    return lines


def _history_lines(prov: dict) -> list[str]:
    """How the weights and the decision came to be: trained from scratch or fine-tuned from another
    model (named by digest), and any later recalibration, so a reader knows what the figures below
    belong to."""
    config = prov.get("config") or {}
    start = (prov.get("selection") or {}).get("fine_tuned_from")
    when = f" on {_fmt(prov['created'])[:10]}" if prov.get("created") else ""
    lines = []
    if isinstance(start, dict):
        lines.append(f"  fine-tuned from {_fmt(start.get('name', '?'))} (sha256:{str(start.get('digest', ''))[:16]}), "
                     f"{_fmt(config.get('epochs', '?'))} epochs at learning rate {_fmt(config.get('lr', '?'))}{when}")
        if start.get("trusted") is False:  # A9-12: the start's signature, as the new file's is shown
            signature = _fmt(start.get("signature", "not verified"))
            lines.append(f"  its start model was {signature}: nothing vouched for it")
    elif config:
        lines.append(f"  trained from {_fmt(config.get('init', '?'))} initialisation, "
                     f"{_fmt(config.get('epochs', '?'))} epochs{when}")
    recal = prov.get("recalibration")
    if isinstance(recal, dict) and recal.get("note"):
        lines.append(f"  afterwards: {_fmt(recal['note'])}")
    return ["How it was made:", *lines] if lines else []


def _patterns_line(m: dict) -> str:
    """Which scans the model reads, as the predictor (``Predictor.check``: the file's scan patterns and its
    ``min_bscans``) and the quality gate (``quality.geometry_verdict``: a cube's B-scans and field of view) decide
    it. "volume; at least 1 B-scan(s)" was read as "a single B-scan will do", and a line scan was refused (ninth
    walk-through): ``min_bscans`` is the model's least, not the gate's, so it is named only above one."""
    from octviewer.structure.quality import MIN_CUBE_BSCANS, MIN_CUBE_FOV_MM

    patterns = list(m.get("scan_patterns") or ["volume"])
    text = f"Scan patterns analysed: {_fmt(patterns)}"
    if "line" not in patterns:
        text += " (not a line scan of one B-scan)"
    if "volume" in patterns:
        text += (f"; with the quality check on (the default), a cube of at least {MIN_CUBE_BSCANS} B-scans covering "
                 f"{MIN_CUBE_FOV_MM:.1f} mm each way")
    least = m.get("min_bscans", 1)
    if isinstance(least, int) and least > 1:
        text += f"; the model itself needs at least {least} B-scans"
    return text


def model_card_text(meta) -> str:
    """The card a reader needs: what it is, what it learnt from, how it decides, how well it did
    (in words and units, with intervals), then the technical details."""
    m = meta_dict(meta)
    prov = m.get("provenance") or {}
    synthetic = bool(m.get("synthetic_data"))
    lines = [f"Name: {_fmt(m.get('name', 'unnamed'))}",
             f"Architecture: {_fmt(m.get('architecture', '?'))}",
             "Training data: " + ("SYNTHETIC (not clinically valid)" if synthetic
                                  else "as stated below" if _data_lines(prov) else "not recorded in the file"),
             *_data_lines(prov),
             *_history_lines(prov),
             f"Classes: {_fmt(m.get('class_names', ['normal', 'glaucoma']))}",
             _patterns_line(m)]
    if isinstance(m.get("threshold"), (int, float)):
        lines.append(f"Decision: glaucoma when the calibrated P(glaucoma) >= {m['threshold']:.3f}")
    cal = m.get("calibration") or {}
    if cal.get("method") == "platt":
        recal = prov.get("recalibration") if isinstance(prov.get("recalibration"), dict) else {}
        volumes = (recal.get("data") or {}).get("volumes") if isinstance(recal.get("data"), dict) else None
        where = f"{volumes} volumes of a calibration cohort" if volumes else "the validation split"
        lines.append(f"Calibration: Platt scaling fitted on {where} (a = {cal.get('a', 0):.3f}, "
                     f"b = {cal.get('b', 0):.3f})")
    agg = m.get("aggregation") or {}
    if agg:
        # the map is applied after the mean: the mean of the B-scans' calibrated probabilities (as the
        # per-B-scan CSV lists them) differs in the third decimal, which read as an error (fourth walk-through)
        lines.append(f"One volume = the {agg.get('probability', 'mean')} of its B-scans' uncalibrated probabilities, "
                     f"then calibrated, and the {agg.get('vf', 'median')} of their VF estimates")
    evaluation = m.get("evaluation") or {}
    if isinstance(evaluation, dict) and evaluation.get("image_level"):
        data = evaluation.get("data") or {}
        what = (f"{data.get('patients', '?')} patients, {data.get('volumes', '?')} volumes"
                + (", SYNTHETIC eyes" if data.get("synthetic") else ""))
        lines += ["", f"On independent data ({what}; evaluated {_fmt(evaluation.get('evaluated', '?'))[:10]}, "
                  "stored with octviewer-train evaluate --attach):",
                  *([f"  CAVEAT: {_fmt(data['independence'])}"] if data.get("independence") else []),
                  *_metric_lines(evaluation, data.get("glaucoma") if data.get("volumes") ==
                                 evaluation["image_level"].get("n") else None, m.get("threshold"))]
        share = (evaluation.get("md_checks") or {}).get("normal_md_ge_-2.5_share")
        if isinstance(share, (int, float)):
            pair = (evaluation["md_checks"].get("normal_md_ge_-2.5_share_ci95") or [])
            ci = f" [{pair[0]:.0%}, {pair[1]:.0%}]" if len(pair) == 2 else ""
            lines.append(f"  normal eyes with predicted MD >= -2.5 dB: {share:.0%}{ci}")
        pg = evaluation.get("pointing_game") or {}
        if isinstance(pg.get("hit_rate"), (int, float)):
            pair = pg.get("ci95") or []
            ci = f" [{pair[0]:.0%}, {pair[1]:.0%}]" if len(pair) == 2 else ""
            lines.append(f"  CAM peak on the damaged region: {pg['hit_rate']:.0%}{ci} of {pg.get('n', '?')} glaucoma "
                         f"eyes with localized damage (a random peak: {pg.get('chance_rate', float('nan')):.0%})")
    metrics = prov.get("test_metrics") or {}
    if isinstance(metrics, dict) and metrics:
        test = (((prov.get("data") or {}).get("splits") or {}).get("test")) or {}
        same = test.get("volumes") == (metrics.get("image_level") or {}).get("n")  # the counts are of these volumes
        # after the independent evaluation, said whose it is: listed first, the training run's own split
        # (AUC 0.901) was read before the pre-declared evaluation (0.858) that needed scrolling (fifth walk-through)
        lines += ["", "From the training run, on its own test split (patients never used for training or choices"
                  + (", SYNTHETIC eyes" if synthetic else "") + "):",
                  *_metric_lines(metrics, test.get("glaucoma") if same else None, m.get("threshold"))]
    lines += ["", "Model file", *model_file_lines(m)]
    lines += ["", "Technical details"]
    pre = m.get("preprocess") or {}
    if pre:
        lines.append(f"  input: {pre.get('size', '?')} x {pre.get('size', '?')} px ({_fmt(pre.get('name', ''))})")
    scaling = m.get("vf_scaling") or {}
    if scaling:
        # "md: -33.814 to 5.674, psd: -0.205 to 13.895" read as typos (a PSD below 0, an MD above +5):
        # they are the span the network's raw outputs are scaled to, not values it shows (walk-through)
        from octviewer.core import VF_INDICES

        lines.append("  VF outputs, internal scaling (not clinical or normal ranges): the network's outputs are "
                     "scaled onto the span of the training values, widened a little on each side, so a span may "
                     "reach past what is possible (a PSD below 0 dB); every estimate shown is clipped to the "
                     "possible range:")
        for name, d in scaling.items():
            if isinstance(d, dict) and isinstance(d.get("lo"), (int, float)) and isinstance(d.get("hi"), (int, float)):
                spec = VF_INDICES.get(name, {"label": name, "unit": "", "range": None})
                possible = (f"; estimates shown within {spec['range'][0]:g} to {spec['range'][1]:g} {spec['unit']}"
                            if spec.get("range") else "")
                lines.append(f"    {spec['label']}: scaled over {d['lo']:+.1f} to {d['hi']:+.1f} "
                             f"{spec['unit']}{possible}")
    lines.append(f"  created: {_fmt(prov.get('created', 'unknown'))}")
    software = prov.get("software") or {}
    if software:
        lines.append("  software: " + ", ".join(f"{k} {v}" for k, v in software.items()))
    lines += ["", "Research use only. Not a medical device."]
    return "\n".join(lines)
