"""Manifolds of fixed points: continua of equilibria (line, ring and higher-dimensional
attractors) recognised among the points that `fixed_points` resolved.

A trained network's continuous attractor is found by a fixed-point search as many separate
points: every start converges somewhere on the continuum, and each of those points has as
many neutral directions (growth rates within `neutral_tol` of zero) as the continuum has
dimensions. Two points belong to one manifold when the segment between them stays on it.
That is measured from each end's linearisation: the velocity `f` at points of the segment
(its ends included: a slow point moves), written in the eigenbasis at that end, is what the
state would do at a transverse offset `Σ c_j / λ_j v_j` from the end's manifold (`λ_j − 1`
for a map; neutral directions carry no offset). The *slowness* of a segment is the largest
such offset over the segment relative to its length, seen from both ends: zero on a flat
continuum, about `φ/8` for a chord that spans an angle `φ` of a ring, and of order one
between isolated points. Segments with slowness below `tol` that have a neutral direction at
one end at least join their ends; points joined directly or through other members form one
manifold (a fixed point without neutral directions on an approximate line attractor is a
member when its segments to the line are slow). Everything else is an isolated point.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from ._system import as_system, growth_rates
from ._validate import check_int, check_number, check_positive

_SEGMENT = (0.0, 0.25, 0.5, 0.75, 1.0)  # where the speed along a segment is measured


class FixedPointManifolds(eqx.Module):
    """Manifolds of fixed points among the distinct points of a `FixedPoints` (from
    `FixedPoints.manifolds`), in `m` slots ordered by the number of members.

    **Fields** (slot axis `m`; row axis `k`, the rows of the `FixedPoints` they came from):

    - `label`: `[k]`, the slot of the manifold each row belongs to; −1 for isolated points,
      unresolved rows, duplicates and padding.
    - `isolated`: `[k]`, distinct resolved points on no manifold.
    - `neutral`: `[k]`, the number of neutral directions at each row (−1 where unknown).
    - `dim`: `[m]`, the dimension of each manifold: the most common number of neutral
      directions among its members that have any.
    - `n_members`: `[m]`; `valid`: `[m]`, real slots.
    - `centre`: `[m, n]`, the mean of the members.
    - `axes`: `[m, n, n]`, principal axes of the members (columns, by decreasing spread);
      the first `dim` of them are a basis of the manifold where it is sampled well.
    - `extent`: `[m, n]`, the members' range (max − min) along each principal axis.
    - `transverse_rate`: `[m]`, the largest growth rate transverse to the manifold over its
      members (`Re λ`, or `log|μ|` for a map): negative when it attracts.
    - `stable`: `[m]`, `transverse_rate < −neutral_tol`: every transverse direction decays.
    - `closed`: `[m]`, a 1-D manifold whose members go round its centre in the plane of its
      first two axes (no angular gap over 90°, radii within 30 % of their mean): a ring.
    - `slowness`: `[m]`, the largest slowness (transverse offset relative to length) of the
      segments that joined its members.
    - `n_found`: the number of manifolds found, which may exceed the `m` slots (the
      smallest are then left out: their members have `label` −1 and `isolated` False).
    - `neutral_tol`, `tol`: the tolerances used.
    """

    label: Int[Array, " k"]
    isolated: Bool[Array, " k"]
    neutral: Int[Array, " k"]
    dim: Int[Array, " m"]
    n_members: Int[Array, " m"]
    valid: Bool[Array, " m"]
    centre: Float[Array, "m n"]
    axes: Float[Array, "m n n"]
    extent: Float[Array, "m n"]
    transverse_rate: Float[Array, " m"]
    stable: Bool[Array, " m"]
    closed: Bool[Array, " m"]
    slowness: Float[Array, " m"]
    n_found: Int[Array, ""]
    neutral_tol: Float[Array, ""]
    tol: Float[Array, ""]

    kind_names: ClassVar[tuple[str, ...]] = ("isolated point", "line", "ring", "manifold")

    @property
    def n_manifolds(self) -> Int[Array, ""]:
        return jnp.sum(self.valid)

    @property
    def n_isolated(self) -> Int[Array, ""]:
        return jnp.sum(self.isolated)

    def basis(self, i: int) -> Float[Array, "n d"]:
        """The first `dim` principal axes of manifold `i` (a concrete index)."""
        return self.axes[i][:, : int(self.dim[i])]

    def plot(self, fps, ax=None, trajectories=None, **kwargs):
        """The points in the plane of the first two principal components: isolated points
        coloured by stability, each manifold's members in its own colour with its principal
        axes (see `jaxdyn.plot.plot_manifolds`)."""
        from .plot import plot_manifolds

        return plot_manifolds(fps, self, ax=ax, trajectories=trajectories, **kwargs)

    def summary(self) -> list[str]:
        """One line per manifold, e.g. `'1-D line of 40 points, transversally stable'`."""
        lines = []
        for i in np.flatnonzero(np.asarray(self.valid)):
            d = int(self.dim[i])
            kind = "ring" if bool(self.closed[i]) else ("line" if d == 1 else "manifold")
            lines.append(f"{d}-D {kind} of {int(self.n_members[i])} points, transversally "
                         f"{'stable' if bool(self.stable[i]) else 'unstable'} (rate "
                         f"{float(self.transverse_rate[i]):.3g}), extent "
                         f"{float(self.extent[i, 0]):.3g} along its first axis")
        return lines

    def __repr__(self) -> str:
        try:
            head = (f"FixedPointManifolds({int(self.n_isolated)} isolated points + "
                    f"{int(self.n_manifolds)} manifold(s)")
            more = int(self.n_found) - int(self.n_manifolds)
            if more > 0:
                head += f" (and {more} smaller ones beyond the {self.valid.shape[0]} slots)"
            body = self.summary()
        except Exception:  # traced: fall back to the PyTree repr
            return eqx.tree_pformat(self)
        return head + "".join(f"\n  {line}" for line in body) + ")"


def find_manifolds(fps, system: Any, *, neutral_tol: ArrayLike | None = None,
                   tol: ArrayLike = 0.05, size: int = 8, chunk: int = 16) -> FixedPointManifolds:
    """See `FixedPoints.manifolds`."""
    if fps.eigvals is None:
        raise ValueError("`manifolds` needs the linearisation: call `fixed_points(..., "
                         "linearise=True)` or `fps.linearise(system)` first.")
    system = as_system(system)
    if system.discrete != fps.discrete:
        raise ValueError(f"`system` is a {'map' if system.discrete else 'flow'} but the fixed "
                         f"points are of a {'map' if fps.discrete else 'flow'}.")
    size = check_int(size, "size")
    chunk = check_int(chunk, "chunk")
    dtype = fps.x.dtype
    if neutral_tol is None:
        neutral_tol = float(jnp.finfo(dtype).eps) ** 0.5
    elif not isinstance(neutral_tol, jax.Array):
        check_positive(neutral_tol, "neutral_tol")
    if not isinstance(tol, jax.Array):
        check_number(tol, "tol", open_low=True)
    return _find_manifolds(fps, system, jnp.asarray(neutral_tol, dtype), jnp.asarray(tol, dtype),
                           size, chunk)


@eqx.filter_jit
def _find_manifolds(fps, system, ntol, tol, size: int, chunk: int) -> FixedPointManifolds:
    from ._fixed_points import _args_features, _map_rows, _residual, _row

    k, n = fps.x.shape
    dtype = fps.x.dtype
    rows = jnp.arange(k, dtype=jnp.int32)
    distinct = (fps.resolved & (fps.point == rows) & jnp.all(jnp.isfinite(fps.x), -1)
                & jnp.all(jnp.isfinite(fps.eigvals), -1))
    w = fps.eigvals
    rates = growth_rates(system, w)
    is_neutral = jnp.abs(rates) <= ntol
    neutral = jnp.where(distinct, jnp.sum(is_neutral, -1), -1)
    cand = distinct & (neutral > 0)
    # The fastest-growing transverse rate of each point.
    r_top = jnp.max(jnp.where(is_neutral, -jnp.inf, rates), -1)
    feats = _args_features(fps)
    x = jnp.where(distinct[:, None], fps.x, 0.0)
    x = jax.lax.stop_gradient(x)

    # Each point's transverse response: f = Σ c_j v_j returns from a transverse offset
    # Σ (c_j / λ_j) v_j (λ_j − 1 for a map); neutral directions carry no offset.
    shift = jnp.where(is_neutral, jnp.inf, w - 1.0 if fps.discrete else w)
    left = jnp.where(distinct[:, None, None], fps.left_eigvecs, 0.0)
    right = jnp.where(distinct[:, None, None], fps.eigvecs, 0.0)

    def slowness_row(i):
        xi, a = _row(fps, i)
        c = x - xi[None]
        length = jnp.linalg.norm(c, axis=-1)
        offset = jnp.zeros(k, dtype)
        for s in _SEGMENT:
            f = jax.vmap(lambda y: _residual(y, (system, a)))(xi[None] + s * c)
            coef = (f.astype(left.dtype) @ left[i].conj()) / shift[i][None]
            off = jnp.real(coef @ right[i].T)
            offset = jnp.maximum(offset, jnp.linalg.norm(off, axis=-1))
        same_args = jnp.all(jnp.abs(feats - feats[i][None]) <= 1e3 * jnp.finfo(dtype).eps *
                            jnp.maximum(1.0, jnp.abs(feats[i][None])), -1)
        slow = offset / jnp.where(length > 0, length, 1.0)
        ok = distinct & same_args & (rows != jnp.asarray(i, jnp.int32)) & (length > 0)
        return dict(s=jnp.where(ok & jnp.isfinite(slow), slow, jnp.inf))

    # Every distinct point's view of its segments to every other; a segment joins its ends
    # when both views find it slow and at least one end has a neutral direction.
    S = _map_rows(slowness_row, distinct, k, chunk)["s"]
    S = jnp.where(jnp.isnan(S), jnp.inf, S)
    S = jnp.maximum(S, S.T)
    linked = (S <= tol) & (cand[:, None] | cand[None, :]) & distinct[:, None] & distinct[None]

    # Connected components by label propagation (the smallest row index of each).
    def spread(carry):
        lab, _ = carry
        new = jnp.min(jnp.where(linked, lab[None, :], k), axis=1)
        new = jnp.where(distinct, jnp.minimum(lab, new), k).astype(jnp.int32)
        return new, jnp.any(new != lab)

    root, _ = jax.lax.while_loop(lambda c: c[1], spread,
                                 (jnp.where(distinct, rows, k).astype(jnp.int32),
                                  jnp.asarray(True)))
    counts = jnp.zeros(k + 1, jnp.int32).at[root].add(1)[:k]
    # Slots: components with at least two members, largest first.
    order = jnp.argsort(-jnp.where(counts >= 2, counts, 0), stable=True)[:size]
    valid = counts[order] >= 2
    slot_of_root = jnp.full(k + 1, -1, jnp.int32).at[jnp.where(valid, order, k + 1)].set(
        jnp.arange(size, dtype=jnp.int32), mode="drop")
    label = slot_of_root[root]
    slots = jnp.arange(size, dtype=jnp.int32)
    member = (label[None, :] == slots[:, None]) & valid[:, None]  # [m, k]
    n_members = jnp.sum(member, -1, dtype=jnp.int32)
    count = jnp.maximum(n_members, 1).astype(dtype)
    wts = member.astype(dtype)
    centre = (wts @ x) / count[:, None]
    Z = (x[None] - centre[:, None]) * wts[..., None]
    cov = jnp.einsum("mki,mkj->mij", Z, Z)
    _, vecs = jnp.linalg.eigh(cov)
    axes = vecs[..., ::-1]
    proj = jnp.einsum("mki,mij->mkj", x[None] - centre[:, None], axes)
    big = jnp.finfo(dtype).max
    extent = (jnp.max(jnp.where(member[..., None], proj, -big), 1)
              - jnp.min(jnp.where(member[..., None], proj, big), 1))
    hist = jnp.zeros((size, n + 1), jnp.int32).at[
        jnp.arange(size, dtype=jnp.int32)[:, None], jnp.clip(neutral, 0, n)[None, :]].add(
        (member & cand[None, :]).astype(jnp.int32))
    dim = jnp.argmax(hist.at[:, 0].set(-1), axis=-1)
    transverse = jnp.max(jnp.where(member, r_top[None, :], -jnp.inf), -1)
    slowness = jnp.max(jnp.where(member[:, :, None] & member[:, None, :] & jnp.isfinite(S)[None]
                                 & linked[None], S[None], 0.0), axis=(1, 2))
    # A ring: members all round the centre in the plane of the first two axes.
    ang = jnp.arctan2(proj[..., 1], proj[..., 0])
    rad = jnp.hypot(proj[..., 0], proj[..., 1])
    ang_sorted = jnp.sort(jnp.where(member, ang, jnp.inf), -1)
    gaps = jnp.diff(ang_sorted, axis=-1)
    gaps = jnp.where(jnp.isfinite(gaps), gaps, 0.0)
    first = ang_sorted[:, 0]
    last = jnp.max(jnp.where(member, ang, -jnp.inf), -1)
    wrap = 2 * jnp.pi - (last - first)
    max_gap = jnp.maximum(jnp.max(gaps, -1), wrap)
    mean_r = jnp.sum(rad * wts, -1) / count
    spread_r = jnp.max(jnp.where(member, jnp.abs(rad - mean_r[:, None]), 0.0), -1)
    closed = valid & (dim == 1) & (n_members >= 4) & (max_gap < jnp.pi / 2) & (
        spread_r < 0.3 * mean_r)
    mask = lambda a, fill: jnp.where(valid.reshape(valid.shape + (1,) * (a.ndim - 1)), a, fill)
    return FixedPointManifolds(
        label=label, isolated=distinct & (counts[jnp.clip(root, 0, k - 1)] < 2) & (root < k),
        neutral=neutral, n_found=jnp.sum(counts >= 2, dtype=jnp.int32),
        dim=mask(dim, -1), n_members=mask(n_members, 0), valid=valid,
        centre=mask(centre, jnp.nan), axes=mask(axes, jnp.nan), extent=mask(extent, jnp.nan),
        transverse_rate=mask(transverse, jnp.nan), stable=valid & (transverse < -ntol),
        closed=closed, slowness=mask(slowness, jnp.nan), neutral_tol=ntol, tol=tol)
