"""A readable model card from a model file's metadata (Help > About model): what the model is,
what it was trained on, how it decides and how well it did, as plain lines of text."""

from __future__ import annotations


def meta_dict(meta) -> dict:
    """Model metadata as a plain dict, whether the loader gives a dict or a typed ModelMeta."""
    if hasattr(meta, "to_dict"):
        return meta.to_dict()
    return dict(meta or {})


def _fmt(value) -> str:
    if isinstance(value, float):
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


def model_card_text(meta) -> str:
    m = meta_dict(meta)
    prov = m.get("provenance") or {}
    lines = [f"Name: {_fmt(m.get('name', 'unnamed'))}",
             f"Architecture: {_fmt(m.get('architecture', '?'))}",
             "Training data: " + ("SYNTHETIC (not clinically valid)" if m.get("synthetic_data") else "as stated below"),
             f"Classes: {_fmt(m.get('class_names', ['normal', 'glaucoma']))}",
             f"Scan patterns analysed: {_fmt(m.get('scan_patterns', ['volume']))}",
             f"Minimum B-scans: {m.get('min_bscans', 1)}"]
    if isinstance(m.get("threshold"), (int, float)):
        lines.append(f"Decision threshold on P(glaucoma): {m['threshold']:.3f}")
    pre = m.get("preprocess") or {}
    if pre:
        lines.append(f"Input: {pre.get('size', '?')} x {pre.get('size', '?')} px ({_fmt(pre.get('name', ''))})")
    for key, title in (("calibration", "Calibration:"), ("aggregation", "Aggregation over B-scans:"),
                       ("vf_scaling", "Visual-field output scaling:")):
        if isinstance(m.get(key), dict):
            _section(lines, title, m[key])
    lines.append("")
    lines.append(f"Created: {_fmt(prov.get('created', 'unknown'))}")
    _section(lines, "Software:", prov.get("software") or {})
    metrics = (prov.get("test_metrics") or {})
    if isinstance(metrics, dict):
        _section(lines, "Test split of its training data (reported by training):",
                 {k: v for k, v in metrics.items() if not isinstance(v, list)})
    if isinstance(m.get("evaluation"), dict):
        _section(lines, "Evaluation:", {k: v for k, v in m["evaluation"].items() if not isinstance(v, list)})
    lines += ["", "Research use only. Not a medical device."]
    return "\n".join(lines)
