"""What an estimator needs beside its curve: `speed`, the work done per second at a GPU share
under the request's offline throughput profile (the Rust SDK's `optimus::speed`)."""

from typing import List


def speed(profile: List, share: float) -> float:
    """Relative speed at `share`: piecewise linear through (0, 0) and the profile's points,
    extrapolated proportionally past the last one; `share` itself when the profile is empty."""
    if not profile:
        return share
    pts = [(0.0, 0.0)] + [(p.share, p.speed) for p in profile]
    pts.sort(key=lambda q: q[0])
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if share <= s1:
            frac = (share - s0) / (s1 - s0) if s1 > s0 else 1.0
            return v0 + frac * (v1 - v0)
    last = pts[-1]
    return last[1] * share / last[0]
