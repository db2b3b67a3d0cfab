"""Progression: ordinary least squares of a measure over time, as perimetry trend analysis does it.

The slope is in units per year (time in years from the first visit), with its 95 % confidence
interval from the t distribution on n - 2 degrees of freedom. Change is flagged as significant
only when both hold:

- the confidence interval of the slope excludes zero (the change is not test-retest noise), and
- the slope is worse than a clinically meaningful rate, ``WORSENING_PER_YEAR``:
  MD -0.5 dB/yr and VFI -1 %/yr (the "fast progressor" rates of Humphrey GPA/VFI trend
  analysis, Chauhan et al. BJO 2008), PSD +0.5 dB/yr, global RNFL -1 um/yr (about twice the
  age-related loss of 0.5 um/yr, Leung et al. Ophthalmology 2012).

At least ``MIN_VISITS`` (3) visits are needed; with fewer the trend reports no interval and never
flags change.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

MIN_VISITS = 3
#: Rate at or beyond which a significant slope counts as progression (units per year).
WORSENING_PER_YEAR = {"md": -0.5, "vfi": -1.0, "psd": 0.5, "rnfl": -1.0}
DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Trend:
    """A fitted linear trend; ``band`` gives its 95 % confidence band for drawing."""

    n: int
    slope_per_year: float
    intercept: float  # value at years == 0 (the first date)
    ci: tuple[float, float]  # 95 % CI of the slope; NaN when n < MIN_VISITS
    p: float  # two-sided p of slope == 0; NaN when n < MIN_VISITS, ``flat`` or ``on_a_line``
    significant: bool  # CI excludes 0 and slope beyond the threshold in the worsening direction
    threshold: float | None  # units per year; sign gives the worsening direction
    start: dt.date | None
    _x_mean: float = 0.0
    _sxx: float = 0.0
    _residual_sd: float = math.nan

    @property
    def enough(self) -> bool:
        return self.n >= MIN_VISITS

    @property
    def flat(self) -> bool:
        """The same value at every visit: no slope to test (p is NaN, never 0)."""
        return self.enough and self.slope_per_year == 0.0 and self._residual_sd == 0.0

    @property
    def on_a_line(self) -> bool:
        """Every value exactly on the fitted line: no residual variation, so no p-value or CI (never "p=0.000")."""
        return self.enough and self._residual_sd == 0.0 and not self.flat

    def years(self, dates: Iterable[dt.date]) -> np.ndarray:
        return np.array([(d - self.start).days / DAYS_PER_YEAR for d in dates], dtype=float)

    def band(self, years: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitted line and the confidence band of the mean at ``years`` (from the first date)."""
        years = np.asarray(years, dtype=float)
        fit = self.intercept + self.slope_per_year * years
        if not self.enough or not math.isfinite(self._residual_sd):
            return fit, fit.copy(), fit.copy()
        # scipy here, not at the top: 0.8 s of the study package's import (core.stop.run_module)
        from scipy import stats

        t = stats.t.ppf(0.5 + level / 2, self.n - 2)
        half = t * self._residual_sd * np.sqrt(1.0 / self.n + (years - self._x_mean) ** 2 / self._sxx)
        return fit, fit - half, fit + half

    def describe(self, unit: str) -> str:
        if not self.enough:
            return f"{self.n} visit{'s' if self.n != 1 else ''}: at least {MIN_VISITS} needed for a trend"
        if self.flat:
            return f"no change: the same value at all {self.n} visits (no p-value: nothing varies to test)"
        if self.on_a_line:
            return (f"{self.slope_per_year:+.2f} {unit}/yr: the {self.n} values lie exactly on a line "
                    "(no p-value or CI: nothing varies around the line to test)")
        text = (f"{self.slope_per_year:+.2f} {unit}/yr (95% CI {self.ci[0]:+.2f} to {self.ci[1]:+.2f}, "
                f"p={self.p:.3f}, {self.n} visits)")
        return text + (" - significant change" if self.significant else "")


def trend(values_by_date: Mapping[dt.date, float] | Iterable[tuple[dt.date, float]],
          measure: str | None = None, threshold: float | None = None) -> Trend:
    """OLS trend of ``values_by_date``; ``measure`` (md, vfi, psd, rnfl) picks the documented threshold.

    Several values on one date (two volumes of a visit) each count as an observation: they carry
    the within-visit variability the CI should include. NaN values are dropped.
    """
    items = values_by_date.items() if isinstance(values_by_date, Mapping) else values_by_date
    pairs = sorted((d, float(v)) for d, v in items if v is not None and math.isfinite(float(v)))
    if threshold is None and measure is not None:
        threshold = WORSENING_PER_YEAR.get(measure)
    if not pairs:
        return Trend(0, math.nan, math.nan, (math.nan, math.nan), math.nan, False, threshold, None)
    start = pairs[0][0]
    x = np.array([(d - start).days / DAYS_PER_YEAR for d, _ in pairs])
    y = np.array([v for _, v in pairs])
    n = len(pairs)
    distinct_dates = len({d for d, _ in pairs})
    x_mean, sxx = float(x.mean()), float(((x - x.mean()) ** 2).sum())
    if sxx <= 0:  # all on one date: no slope
        return Trend(n, math.nan, float(y.mean()), (math.nan, math.nan), math.nan, False, threshold, start)
    slope = float(((x - x_mean) * (y - y.mean())).sum() / sxx)
    intercept = float(y.mean() - slope * x_mean)
    if n < MIN_VISITS or distinct_dates < MIN_VISITS:
        return Trend(n, slope, intercept, (math.nan, math.nan), math.nan, False, threshold, start, x_mean, sxx)
    if np.ptp(y) == 0:  # "p=0.000, CI +0.00 to +0.00" read as a proven slope (attack run 7, A7-9): no test
        return Trend(n, 0.0, float(y[0]), (math.nan, math.nan), math.nan, False, threshold, start, x_mean, sxx, 0.0)
    residual = y - (intercept + slope * x)
    sd = float(np.sqrt((residual ** 2).sum() / (n - 2)))
    if sd <= 1e-9 * float(np.ptp(y)):  # exactly on a line (VFI 98, 96, 94 a year apart): "CI -2.00 to -2.00,
        # p=0.000 - significant" read as proven (attack run 8, A8-11): no residual variation, no test
        return Trend(n, slope, intercept, (math.nan, math.nan), math.nan, False, threshold, start, x_mean, sxx, 0.0)
    from scipy import stats  # as in Trend.band

    se = sd / math.sqrt(sxx)
    t_crit = float(stats.t.ppf(0.975, n - 2))
    ci = (slope - t_crit * se, slope + t_crit * se)
    p = float(2 * stats.t.sf(abs(slope / se), n - 2))
    excludes_zero = ci[0] > 0 or ci[1] < 0
    worse = threshold is not None and ((threshold < 0 and slope <= threshold) or (threshold > 0 and slope >= threshold))
    return Trend(n, slope, intercept, ci, p, bool(excludes_zero and worse), threshold, start, x_mean, sxx, sd)
