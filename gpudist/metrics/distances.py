"""Distances between the surfaces of two batches of masks, and per-row reductions over them.

Every (batch, class) item is one row. The distances from one surface to the other are kept in a
padded (N, K) layout: row n holds its `count[n]` distances first, then +inf padding with weight
0, so every reduction is a masked reduction over dim 1 and no Python loop runs over the items.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..backends import extension
from ..distance import edt
from . import surfaces


def _real_entries(count: torch.Tensor, width: int) -> torch.Tensor:
    """(N, width) bool: True on the first count[n] entries of row n (the padded layout's)."""
    k = torch.arange(width, device=count.device)
    return k[None, :] < count[:, None]


@dataclass(frozen=True)
class Directed:
    """Distances from the surface elements of one mask to the surface of the other.

    dist: (N, K) float64; row n: count[n] distances (+inf when the other surface is empty), then
        +inf padding. Ascending within each row after `sorted()`.
    weight: (N, K) float64; 1 per border voxel, or the contour length / surfel area; 0 in padding.
    count: (N,) int64 number of surface elements of row n.
    """

    dist: torch.Tensor
    weight: torch.Tensor
    count: torch.Tensor

    def valid(self) -> torch.Tensor:
        """(N, K) bool: True on a row's real entries."""
        return _real_entries(self.count, self.dist.shape[1])

    def sorted(self) -> Directed:
        """The same rows, each sorted by distance (padding stays last: it is +inf)."""
        dist, order = torch.sort(self.dist, dim=1, stable=True)
        return Directed(dist, self.weight.gather(1, order), self.count)

    def sorted_by_size_then_distance(self) -> Directed:
        """The same rows in DeepMind's order: ascending (distance, size) pairs, padding last."""
        size = torch.where(self.valid(), self.weight, torch.inf)
        by_size = torch.argsort(size, dim=1, stable=True)
        dist = self.dist.gather(1, by_size)
        order = torch.argsort(dist, dim=1, stable=True)
        return Directed(dist.gather(1, order), self.weight.gather(1, by_size).gather(1, order),
                        self.count)

    def cat(self, other: Directed) -> Directed:
        """Both sets pooled per row: the real entries of `self`, of `other`, then padding."""
        dist = torch.cat([self.dist, other.dist], 1)
        weight = torch.cat([self.weight, other.weight], 1)
        valid = torch.cat([self.valid(), other.valid()], 1)
        # Move every real entry in front of the padding: a stable sort on "is padding".
        order = torch.argsort((~valid).to(torch.uint8), dim=1, stable=True)
        return Directed(dist.gather(1, order), weight.gather(1, order), self.count + other.count)

    # Reductions, each (N,) float64; rows with count 0 give values the caller replaces.

    def max(self) -> torch.Tensor:
        if self.dist.shape[1] == 0:
            return self.dist.new_zeros(self.dist.shape[0])
        return torch.where(self.valid(), self.dist, -torch.inf).amax(1)

    def weighted_sum(self) -> torch.Tensor:
        return torch.where(self.valid(), self.dist * self.weight, 0.0).sum(1)

    def total_weight(self) -> torch.Tensor:
        return self.weight.sum(1)

    def weight_within(self, tolerance: torch.Tensor) -> torch.Tensor:
        """Weight of the elements at distance <= tolerance (tolerance: (N,) float64)."""
        return torch.where(self.dist <= tolerance[:, None], self.weight, 0.0).sum(1)

    def quantile_linear(self, q: float) -> torch.Tensor:
        """Unweighted q-quantile with linear interpolation (torch.quantile, numpy's default).

        Any row order: the two order statistics around position q (count - 1) of each row come
        from a topk of the row's largest values (about (1 - q) of the row), not a full sort.
        """
        n = self.count
        if self.dist.shape[1] == 0:
            return self.dist.new_zeros(n.shape[0])
        last = (n - 1).clamp(min=0)
        pos = q * last.to(torch.float64)
        lo = pos.floor().long()
        hi = torch.minimum(lo + 1, last)
        # Ascending position i of a row of n values is descending rank n - 1 - i.
        k = min(int((n - lo).max()), self.dist.shape[1])
        top = torch.where(self.valid(), self.dist, -torch.inf).topk(max(k, 1), dim=1).values
        v_lo = top.gather(1, (n - 1 - lo).clamp(min=0)[:, None])[:, 0]
        v_hi = top.gather(1, (n - 1 - hi).clamp(min=0)[:, None])[:, 0]
        # Equal ends (including both +inf) give the end itself, never inf - inf.
        return torch.where(v_hi == v_lo, v_lo, torch.lerp(v_lo, v_hi, pos - lo))

    def quantile_weighted(self, q: float) -> torch.Tensor:
        """Weighted q-quantile without interpolation (DeepMind's compute_robust_hausdorff).

        The first sorted distance whose cumulative weight fraction reaches q. Requires sorted rows.
        """
        cum = self.weight.cumsum(1) / self.total_weight()[:, None]
        idx = ((cum < q) & self.valid()).sum(1)
        return self._at(torch.minimum(idx, (self.count - 1).clamp(min=0)))

    def _at(self, idx: torch.Tensor) -> torch.Tensor:
        if self.dist.shape[1] == 0:
            return self.dist.new_zeros(self.dist.shape[0])
        return self.dist.gather(1, idx[:, None])[:, 0]


def _row_counts(mask: torch.Tensor) -> torch.Tensor:
    """(N,) int64: the true elements of each row of the bool mask (N, *spatial). Summed as bytes
    into int32 where a row cannot overflow it (10x faster than a bool or int64 sum on the CPU)."""
    flat = mask.reshape(mask.shape[0], -1).view(torch.uint8)
    wide = flat.shape[1] >= 2**31
    return flat.sum(1, dtype=torch.int64 if wide else torch.int32).long()


def _pad(values: torch.Tensor, count: torch.Tensor, width: int,
         fill: float = torch.inf) -> torch.Tensor:
    """The padded layout (N, width) of `values`, the rows' values one row after the other: row n
    holds its count[n] values, then `fill` (width >= count.max())."""
    n = count.shape[0]
    row = torch.repeat_interleave(torch.arange(n, device=count.device), count)
    start = torch.cumsum(count, 0) - count
    pos = torch.arange(values.shape[0], device=count.device) - start[row]
    out = values.new_full((n, width), fill)
    out[row, pos] = values
    return out


def _rows(dist: torch.Tensor, count: torch.Tensor, border: torch.Tensor,
          codes: torch.Tensor | None, tables: torch.Tensor | None) -> Directed:
    """The distances of border's elements (dist (N, K), `count` per row, row-major within a row)
    with their weights: 1 per element when codes is None, else tables[n, codes[n, ...]] with
    codes (N, *spatial) uint8 and tables (N, n_codes) float64."""
    dist = dist.to(torch.float64)
    if codes is None:
        weight = _real_entries(count, dist.shape[1]).to(torch.float64)
    else:
        n = border.shape[0]
        row, flat = border.reshape(n, -1).nonzero(as_tuple=True)  # row-major: grouped by row
        weight = _pad(tables[row, codes.reshape(n, -1)[row, flat].long()], count, dist.shape[1],
                      0.0)
    return Directed(dist, weight, count)


def _crop_each(pred: torch.Tensor, target: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crops every row to a window around its own foreground, all windows of one shape.

    pred, target: (N, *spatial) bool. Row n's window has the largest per-axis extent of any
    row's bounding box of pred | target, placed to hold row n's box. Outside its box a row is
    background, like the outside of the image for both surface models, so the surfaces and
    their distances do not change; the distance transform then runs on less.

    Returns:
        The cropped pred and target (N, *window), and which rows of pred and target are empty.
    """
    n, spatial = pred.shape[0], tuple(pred.shape[1:])
    ndim, device = len(spatial), pred.device

    def hits(mask: torch.Tensor) -> list[torch.Tensor]:
        # Which positions along each axis hold foreground, (N, size) per axis: axis 0 from the
        # max over the other axes, the others from the max over axis 0 (two passes over mask).
        x = mask.view(torch.uint8)
        if ndim == 1:
            return [x]
        flat = x.amax(dim=1)
        out = [x.amax(dim=list(range(2, ndim + 1)))]
        for axis in range(1, ndim):
            others = [d for d in range(1, ndim) if d != axis]
            out.append(flat.amax(dim=others) if others else flat)
        return out

    hit_p, hit_t = hits(pred), hits(target)
    pred_empty, target_empty = hit_p[0].amax(1) == 0, hit_t[0].amax(1) == 0
    present = ~(pred_empty & target_empty)
    starts, extents = [], []
    for axis, size in enumerate(spatial):
        hit = hit_p[axis] | hit_t[axis]  # the union's, from the two small projections
        lo = hit.argmax(1)
        hi = size - 1 - hit.flip(1).argmax(1)
        extent = int(torch.where(present, hi - lo + 1, 0).max())
        starts.append(torch.minimum(lo, torch.full_like(lo, size - extent)))
        extents.append(extent)

    def crop(x: torch.Tensor) -> torch.Tensor:
        # A view of every window position (no copy), then one block per row: a block copy.
        for axis, extent in enumerate(extents):
            x = x.unfold(axis + 1, extent, 1)
        return x[(torch.arange(n, device=device), *starts)]

    return crop(pred), crop(target), pred_empty, target_empty


def _distances_to_surface(sites: torch.Tensor, query: torch.Tensor, spacing: torch.Tensor,
                          dtype: torch.dtype, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance from each query element to the nearest site (surface element) of its row, +inf
    when the row has none: (dist (N, K) padded with +inf, count (N,) int64), row-major within
    a row (the order of `query.nonzero()`).

    sites, query: (N, *spatial) bool; spacing: (N, ndim) float64. Where the extension has
    `distance_at` for the device, it searches outward from each query (its surface is close to
    the other one, so this is short); otherwise, and for the metrics "taxicab" and
    "chessboard", a full `edt` of ~sites, then read at the queries. One call, whatever the rows'
    spacings.
    """
    if metric == "euclidean" and extension.has_kernel("gpudist::distance_at", sites.device):
        # A row per row of sites (one row, for one site row, is the shared spacing).
        return extension.distance_at(sites, query, spacing.reshape(-1).tolist(), dtype)
    values = edt(~sites, spacing, ndim=sites.dim() - 1, dtype=dtype, metric=metric)[query]
    count = _row_counts(query)
    return _pad(values, count, int(count.max()) if len(count) else 0), count


@dataclass(frozen=True)
class Distances:
    """Both directed distance sets of N (pred, target) pairs.

    pred_to_target: distances from pred's surface elements to target's surface.
    target_to_pred: the other way; None when only directed metrics were asked for.
    pred_empty, target_empty: (N,) bool, the masks with no foreground.
    """

    pred_to_target: Directed
    target_to_pred: Directed | None
    pred_empty: torch.Tensor
    target_empty: torch.Tensor


def pair_distances(pred: torch.Tensor, target: torch.Tensor, spacing: torch.Tensor, *,
                   surface: str, connectivity: int, symmetric: bool,
                   dtype: torch.dtype, metric: str = "euclidean") -> Distances:
    """Surface-to-surface distances of N mask pairs (N may be 0, the masks may have no voxel).

    Args:
        pred, target: (N, *spatial) bool masks.
        spacing: (N, ndim) float64 voxel sizes, one row per pair.
        surface: "voxel" or "surfel" (see `surfaces`).
        connectivity: the erosion's connectivity for "voxel".
        symmetric: also compute target -> pred.
        dtype: float32 or float64, the precision of the distance transform.
        metric: "euclidean", "taxicab" or "chessboard" (`edt`'s metric, with the spacing).
    """
    n, ndim = pred.shape[0], pred.dim() - 1
    if pred.numel() == 0:  # no row, or no voxel: every mask is empty
        pred_empty = target_empty = torch.ones(n, dtype=torch.bool, device=pred.device)
    else:
        pred, target, pred_empty, target_empty = _crop_each(pred, target)
    if bool((pred_empty & target_empty).all()):  # nothing anywhere: no transform to run
        none = Directed(spacing.new_zeros((n, 0)), spacing.new_zeros((n, 0)),
                        torch.zeros(n, dtype=torch.int64, device=pred.device))
        return Distances(none, none if symmetric else None, pred_empty, target_empty)
    if surface == "voxel":
        border_p = surfaces.voxel_border(pred, connectivity)
        border_t = surfaces.voxel_border(target, connectivity)
        code_p = code_t = tables = None
    else:
        code_p, code_t = surfaces.surfel_codes(pred), surfaces.surfel_codes(target)
        border_p = surfaces.surfel_border(code_p, ndim)
        border_t = surfaces.surfel_border(code_t, ndim)
        unique, inverse = torch.unique(spacing, dim=0, return_inverse=True)
        tables = surfaces.element_size_table(unique)[inverse]  # (N, 2 ** 2 ** ndim)
    to_target = _rows(*_distances_to_surface(border_t, border_p, spacing, dtype, metric),
                      border_p, code_p, tables)
    to_pred = (_rows(*_distances_to_surface(border_p, border_t, spacing, dtype, metric),
                     border_t, code_t, tables) if symmetric else None)
    return Distances(to_target, to_pred, pred_empty, target_empty)
