"""The sixth walk-through's findings (a clinician under Xvfb, /tmp/h28): what the trend flags, and what the
results say about estimates the model card did not show to beat the class-mean baseline."""

import datetime as dt

from octviewer.gui.study.trend_view import EyeHistory
from octviewer.study import trend


def _falling(per_year: float, start: float):
    days = [0, 180, 365, 545, 730, 910]
    return [(dt.date(2020, 1, 1) + dt.timedelta(days=d), start + per_year * d / 365.25 + 0.05 * (k % 2))
            for k, d in enumerate(days)]


def test_a_significant_trend_in_a_weak_estimate_is_not_flagged():
    """Predicted MD falling -1.5 dB/yr was flagged "⚠ significant change" in red beside a model card that says
    the MD estimate is no better than the class mean: read as visual-field progression. A measured series and
    an estimate that did beat the baseline are still flagged."""
    points = _falling(-1.5, -1.0)
    history = EyeHistory("P1", "OD", {"md_predicted": points, "md_measured": points},
                         weak={"md", "vfi", "psd"})
    history.trends = {name: trend(points, measure="md") for name in ("md_predicted", "md_measured")}
    assert all(t.significant for t in history.trends.values())
    assert history.significant() == ["md_measured"]
    flagged = {text.split(":")[0]: f for text, f in history.lines()}
    assert flagged == {"MD predicted": False, "MD measured": True}
    assert any("not shown to beat the class-mean baseline: not flagged" in text for text, _ in history.lines())
    history.weak = set()
    assert history.significant() == ["md_predicted", "md_measured"]


def test_a_saved_cam_opacity_that_is_no_number_is_ignored(caplog):
    """A hand-edited CAM opacity of NaN passed the range clamp and drew every B-scan with a CAM black on
    every start (attack run 6, a bypass of run 5's F10 grey-window fix)."""
    from octviewer.gui.settings import WindowSettings

    settings = WindowSettings()
    settings.set("cam/opacity", "nan")
    with caplog.at_level("WARNING"):
        assert settings.display(("fit",))["cam_opacity"] == 0.5
    assert "CAM opacity" in caplog.text
    settings.set("cam/opacity", 0.7)
    assert settings.display(("fit",))["cam_opacity"] == 0.7
