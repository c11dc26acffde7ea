"""Lesions followed across timepoints: matched by overlap (or, when they do not overlap, by centroid
distance within a tolerance), with splits, merges, new and resolved lesions named.

Each timepoint is matched against the one before it, on one voxel grid. A track is a lesion's identity
over time (``L1``, ``L2``, ... by decreasing volume at the timepoint where it first appears). A lesion that
splits keeps its track: its pieces are summed. Lesions that merge become one track named after all of
them (``L1+L2``) from then on.
"""

from __future__ import annotations

import numpy as np

DEFAULT_TOLERANCE_MM = 10.0


def overlap_pairs(before: np.ndarray, after: np.ndarray) -> dict[tuple[int, int], int]:
    """{(component before, component after): voxels shared} for two Int component maps on one grid."""
    both = (before > 0) & (after > 0)
    if not both.any():
        return {}
    a, b = before[both].astype(np.int64), after[both].astype(np.int64)
    keys, counts = np.unique(a * (int(after.max()) + 1) + b, return_counts=True)
    n = int(after.max()) + 1
    return {(int(k // n), int(k % n)): int(c) for k, c in zip(keys, counts)}


def match_components(before: np.ndarray, after: np.ndarray, centroids_before: dict[int, np.ndarray],
                     centroids_after: dict[int, np.ndarray], tolerance_mm: float = DEFAULT_TOLERANCE_MM
                     ) -> list[tuple[int, int, str]]:
    """Edges (component before, component after, how): ``overlap`` for every pair that shares voxels,
    then ``distance`` for lesions left unmatched on both sides whose centroids (mm) lie within
    ``tolerance_mm``, nearest first, one to one."""
    edges = [(a, b, "overlap") for (a, b) in sorted(overlap_pairs(before, after))]
    left_a = [a for a in centroids_before if all(e[0] != a for e in edges)]
    left_b = [b for b in centroids_after if all(e[1] != b for e in edges)]
    pairs = sorted((float(np.linalg.norm(np.asarray(centroids_before[a]) - np.asarray(centroids_after[b]))), a, b)
                   for a in left_a for b in left_b)
    used_a, used_b = set(), set()
    for dist, a, b in pairs:
        if dist <= tolerance_mm and a not in used_a and b not in used_b:
            edges.append((a, b, "distance"))
            used_a.add(a)
            used_b.add(b)
    return edges


def assign_tracks(components_per_timepoint: list[list[int]], edges_per_step: list[list[tuple[int, int, str]]]
                  ) -> tuple[list[dict[int, str]], list[dict]]:
    """Track names per timepoint ({component: track}) and the events of each follow-up.

    ``components_per_timepoint[t]``: the component ids at timepoint t, by decreasing volume;
    ``edges_per_step[t - 1]``: `match_components` between timepoints t - 1 and t.
    Events per follow-up t >= 1: ``new``, ``resolved``, ``split`` ({track: [components]}),
    ``merged`` ({new track: [tracks]}), ``matched_by_distance`` (tracks).
    """
    counter = 0

    def fresh() -> str:
        nonlocal counter
        counter += 1
        return f"L{counter}"

    tracks = [{c: fresh() for c in components_per_timepoint[0]}]
    events = []
    for t in range(1, len(components_per_timepoint)):
        edges = edges_per_step[t - 1]
        prev = tracks[-1]
        names: dict[int, str] = {}
        merged, by_distance = {}, []
        for c in components_per_timepoint[t]:
            parents = sorted({prev[a] for a, b, _ in edges if b == c}, key=_track_order)
            if not parents:
                names[c] = fresh()
            elif len(parents) == 1:
                names[c] = parents[0]
            else:
                names[c] = "+".join(parents)
                merged[names[c]] = parents
            if any(b == c and how == "distance" for _, b, how in edges):
                by_distance.append(names[c])
        continued = {prev[a] for a, _, _ in edges}
        pieces: dict[str, list[int]] = {}
        for c, name in names.items():
            pieces.setdefault(name, []).append(c)
        events.append({"new": sorted((n for c, n in names.items() if not any(b == c for _, b, _ in edges)), key=_track_order),
                       "resolved": sorted({n for n in prev.values() if n not in continued}, key=_track_order),
                       "split": {n: cs for n, cs in pieces.items() if len(cs) > 1},
                       "merged": merged, "matched_by_distance": sorted(set(by_distance), key=_track_order)})
        tracks.append(names)
    return tracks, events


def _track_order(name: str) -> tuple[int, str]:
    return int(name.split("+")[0][1:]), name
