"""The imaging component of RANO 2.0 (Wen et al., J Clin Oncol 2023) response, from measured lesions.

This is the imaging part only: no clinical status, no corticosteroid dose, no confirmation scan, no
distinction of pseudo-progression, and the first timepoint stands in for the post-radiotherapy baseline.
Two readings per follow-up, each returned with the figures that decided it:

- bidimensional: the sum of the enhancing products (longest x perpendicular diameter, mm²) of up to three
  target lesions (the largest measurable ones at baseline; a target's pieces after a split are summed,
  a merge that contains a target counts). Complete response: no enhancing tumour left and no new lesion;
  progression: the sum >= 25 % above its nadir (smallest earlier sum) or a new measurable lesion;
  partial response: the sum >= 50 % below baseline; otherwise stable.
- volumetric: the same with the enhancing volume of all lesions (mL): progression >= 40 % above nadir,
  partial response >= 65 % below baseline.
"""

from __future__ import annotations

IMAGING_ONLY = ("imaging component of RANO 2.0 only: no clinical status, corticosteroid dose or confirmation "
                "scan; the first timepoint is the baseline")
MAX_TARGETS = 3
THRESHOLDS = {"bidimensional": {"progression": 0.25, "partial": 0.50},
              "volumetric": {"progression": 0.40, "partial": 0.65}}


def target_tracks(baseline: dict[str, dict]) -> list[str]:
    """Up to three baseline tracks with a measurable enhancing part, largest product first.
    ``baseline``: {track: {"product_mm2", "measurable", ...}}."""
    measurable = [t for t, v in baseline.items() if v["measurable"]]
    return sorted(measurable, key=lambda t: -baseline[t]["product_mm2"])[:MAX_TARGETS]


def target_sum(tracks_at: dict[str, dict], targets: list[str]) -> float:
    """Sum of the products of every track at one timepoint that is, or merged from, a target."""
    return sum(v["product_mm2"] for t, v in tracks_at.items() if set(t.split("+")) & set(targets))


def categorise(kind: str, values: list[float], new_measurable: list[str], t: int) -> dict:
    """Category of follow-up ``t`` from one reading's ``values`` per timepoint (sum of products, or
    enhancing mL) and the new measurable lesions at ``t``."""
    limits = THRESHOLDS[kind]
    base, now = values[0], values[t]
    nadir = min(values[:t])
    figures = {"baseline": round(base, 2), "nadir": round(nadir, 2), "current": round(now, 2),
               "change_from_baseline_pct": _pct(now, base), "change_from_nadir_pct": _pct(now, nadir),
               "new_measurable_lesions": list(new_measurable)}
    if kind == "bidimensional" and base == 0 and not new_measurable:
        return {"category": "not evaluable", "because": "no measurable enhancing lesion at baseline", **figures}
    if now == 0 and not new_measurable:
        return {"category": "complete response", "because": "no enhancing tumour left and no new lesion", **figures}
    if new_measurable:
        return {"category": "progression", "because": f"new measurable lesion {', '.join(new_measurable)}", **figures}
    if (nadir > 0 and now >= (1 + limits["progression"]) * nadir) or (nadir == 0 and now > 0):
        return {"category": "progression",
                "because": f"{_pct(now, nadir)} % from the nadir (progression at >= +{limits['progression']:.0%})", **figures}
    if base > 0 and now <= (1 - limits["partial"]) * base:
        return {"category": "partial response",
                "because": f"{_pct(now, base)} % from baseline (partial response at <= -{limits['partial']:.0%})", **figures}
    return {"category": "stable disease",
            "because": f"{_pct(now, base)} % from baseline, {_pct(now, nadir)} % from the nadir", **figures}


def _pct(now: float, ref: float) -> float | None:
    return None if ref == 0 else round(100.0 * (now - ref) / ref, 1)
