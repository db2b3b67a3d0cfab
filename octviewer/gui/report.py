"""The PDF report of one analysed scan, drawn with Qt's own PDF writer (no extra dependency)."""

from __future__ import annotations

import datetime as dt
import html
import json

from PySide6.QtCore import QMarginsF, QUrl
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

from ..core import VF_INDICES

DISCLAIMER = ("For research use only. Not a medical device. Not for diagnosis or treatment decisions. "
              "Outputs are estimates from a deep network and must be read by a qualified clinician.")


def write_report(window, path: str, patient_id: str | None = None) -> str:
    v, p = window.volume, window.prediction
    meta = window.predictor.model.meta if window.predictor else {}
    writer = QPdfWriter(path)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.A4), QPageLayout.Portrait, QMarginsF(15, 15, 15, 15)))
    writer.setResolution(150)
    writer.setTitle("OCT glaucoma screening report (research use only)")
    doc = QTextDocument()
    enface_rect = window.enface.mapFromScene(window.enface_image.sceneBoundingRect()).boundingRect()
    images = {"bscan": window.bscan.grab().toImage(), "enface": window.enface.grab(enface_rect).toImage(),
              "curve": window.curve.grab().toImage()}
    for name, image in images.items():
        doc.addResource(QTextDocument.ImageResource, QUrl(name), image)
    synthetic = []
    if p.synthetic_model:
        synthetic.append("The model was trained on SYNTHETIC data: results have no clinical validity.")
    synthetic += [n for n in v.notes if "SYNTHETIC" in n]
    vf_rows = "".join(
        f"<tr><td>{VF_INDICES[k]['label']}</td><td>{val:.1f} {VF_INDICES[k]['unit']}</td>"
        f"<td>{VF_INDICES[k]['normal'][0]:g} to {VF_INDICES[k]['normal'][1]:g}</td></tr>" for k, val in p.vf.items())
    prov = meta.get("provenance", {})
    metrics = prov.get("test_metrics", {}).get("image_level", {})
    body = f"""
    <h1>OCT glaucoma screening report</h1>
    <p style="color:#b00020"><b>{html.escape(DISCLAIMER)}</b></p>
    {''.join(f'<p style="color:#b00020"><b>{html.escape(s)}</b></p>' for s in synthetic)}
    <table cellpadding="3">
      <tr><td>Patient</td><td>{html.escape(patient_id) if patient_id else 'anonymised'}</td></tr>
      <tr><td>Eye</td><td>{v.laterality or 'unknown'}</td></tr>
      <tr><td>Scan date</td><td>{v.acquired.isoformat() if v.acquired else 'unknown'}</td></tr>
      <tr><td>Scan</td><td>{v.scan_pattern}, {v.n_bscans} B-scans, {html.escape(v.device or 'device unknown')}</td></tr>
      <tr><td>Report created</td><td>{dt.datetime.now().isoformat(timespec='minutes')}</td></tr>
    </table>
    <h2>Result (image level = this volume)</h2>
    <p>Probability of glaucoma: <b>{p.probability:.2f}</b> &nbsp; decision: <b>{p.decision}</b>
       (threshold {p.threshold:.2f})</p>
    <table border="1" cellpadding="3"><tr><th>index</th><th>estimate</th><th>normal range</th></tr>{vf_rows}</table>
    <h2>Images</h2>
    <p>B-scan {window.index + 1} with the class activation map (where the network looked):</p>
    <img src="bscan" width="430">
    <p>En-face view and per-B-scan probability:</p>
    <img src="enface" width="170"> <img src="curve" width="300">
    <h2>Model</h2>
    <p>{html.escape(str(meta.get('name')))} ({html.escape(str(meta.get('architecture')))}), created
       {html.escape(str(prov.get('created')))}; software {html.escape(json.dumps(prov.get('software', {})))}.<br>
       Held-out metrics reported by training (image level):
       {', '.join(f"{k} {metrics[k]:.3f}" for k in ('accuracy', 'f1', 'auc') if k in metrics) or 'none'}</p>
    <p style="color:#555"><small>{html.escape(DISCLAIMER)}</small></p>
    """
    doc.setHtml(body)
    doc.print_(writer)
    return path
