"""Attack run 8 (session 14): the window's exports and the study trend (A8-1, A8-2, A8-11, A8-17)."""
import datetime as dt
import math

from octviewer.study.trend import trend


def test_values_exactly_on_a_line_have_no_p_value_or_ci():
    """A8-11: VFI 98, 96, 94 a year apart read "CI -2.00 to -2.00, p=0.000 - significant change"."""
    t = trend({dt.date(2018, 1, 15): 98, dt.date(2019, 1, 15): 96, dt.date(2020, 1, 15): 94}, "vfi")
    assert math.isnan(t.p) and math.isnan(t.ci[0]) and not t.significant
    assert t.slope_per_year < 0 and "exactly on a line" in t.describe("%") and "p=" not in t.describe("%")
