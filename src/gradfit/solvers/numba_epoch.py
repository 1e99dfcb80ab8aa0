"""The numba code of :mod:`gradfit.solvers.compiled` (imported on first use only: importing
numba takes about half a second, which short fits and the command line need not pay).

Compiled with ``cache=True`` (machine code kept on disk beside this file, or in numba's user
cache directory where that is read-only) and ``fastmath={"reassoc", "contract"}``: sums may be
regrouped and multiply-adds fused, so that the row loops vectorize; no assumption that values
are finite is made (NaN and inf propagate, and the divergence checks see them).
"""

from __future__ import annotations

from typing import Any

import numba
from llvmlite import ir  # type: ignore[import-untyped]
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["sgd_epoch"]

_AHEAD = 8  # rows between a row's prefetch and its use (4 to 16 measured alike; none: 30% slower)
_FASTMATH = {"reassoc", "contract"}


@intrinsic
def _prefetch_row(typingctx: Any, array: Any, row: Any) -> Any:
    """Ask for the cache lines of ``array[row, 0]`` (LLVM's prefetch: read, keep in all cache
    levels): the shuffled rows are random accesses, whose latency is otherwise paid in full."""
    sig = types.void(array, row)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
            context, builder, aryty, ary, [args[1], zero]
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, fnty, "llvm.prefetch.p0"
        )
        flags = [ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)]
        builder.call(fn, [builder.bitcast(ptr, i8p), *flags])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, fastmath=_FASTMATH)
def _step(
    P: Any,
    G: Any,
    V: Any,
    has_v: bool,
    s: Any,
    lr: Any,
    momentum: Any,
    nesterov: bool,
    weight_decay: Any,
    l1_threshold: Any,
) -> None:
    """``sgd_update`` on one parameter array (flattened to 1-D views), gradient ``s * G``.
    The common cases get loops of their own (no tests inside the loop: they vectorize)."""
    if momentum == 0:
        for i in range(P.shape[0]):
            P[i] = P[i] - lr * (s * G[i] + weight_decay * P[i])
    else:
        for i in range(P.shape[0]):
            g = s * G[i]
            if weight_decay != 0:
                g = g + weight_decay * P[i]
            v = momentum * V[i] + g if has_v else g
            V[i] = v
            P[i] = P[i] - lr * (g + momentum * v if nesterov else v)
    if l1_threshold != 0:
        for i in range(P.shape[0]):
            a = abs(P[i]) - l1_threshold
            if a > 0:
                P[i] = a if P[i] > 0 else -a
            elif a <= 0:
                P[i] = P[i] * 0
            # else a is NaN: P[i] stays NaN (a blow-up is never hidden as a zero weight)


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def sgd_epoch(
    X: Any,
    Y: Any,
    perm: Any,
    shuffled: bool,
    W: Any,
    b: Any,
    vW: Any,
    vb: Any,
    has_vw: bool,
    has_vb: bool,
    mean: Any,
    scale: Any,
    standardize: bool,
    fit_intercept: bool,
    batch: int,
    grad_scale: Any,
    last_scale: Any,
    lr: Any,
    momentum: Any,
    nesterov: bool,
    weight_decay: Any,
    l1_threshold: Any,
    check_every: int,
    limit: float,
    gW: Any,
    gb: Any,
    z: Any,
    r: Any,
) -> tuple[float, int, bool, float]:
    """One epoch (see :mod:`gradfit.solvers.compiled`). Scalars come in the data's dtype so
    that every operation is done in it, as torch does. Returns (sse, rows, aborted,
    window_mse)."""
    n, d = X.shape
    k = Y.shape[1]
    flat_W, flat_gW, flat_vW = W.reshape(k * d), gW.reshape(k * d), vW.reshape(k * d)
    zero = l1_threshold * 0
    total = 0.0
    rows = 0
    window = 0.0
    window_rows = 0
    steps = 0
    start = 0
    while start < n:
        m = min(batch, n - start)
        sse = 0.0
        for t in range(start, start + m):
            if shuffled:
                if t + _AHEAD < n:  # a row _AHEAD ahead: its cache lines on their way
                    _prefetch_row(X, perm[t + _AHEAD])  # type: ignore[call-arg]
                    _prefetch_row(Y, perm[t + _AHEAD])
                row = perm[t]
            else:
                row = t
            if standardize:
                for i in range(d):
                    z[i] = (X[row, i] - mean[i]) / scale[i]
            else:
                for i in range(d):
                    z[i] = X[row, i]
            for j in range(k):
                acc = zero
                for i in range(d):
                    acc += z[i] * W[j, i]
                r[j] = (acc + b[j]) - Y[row, j]
            for j in range(k):
                rj = r[j]
                sse += float(rj) * float(rj)
                if t == start:
                    gb[j] = rj
                    for i in range(d):
                        gW[j, i] = rj * z[i]
                else:
                    gb[j] += rj
                    for i in range(d):
                        gW[j, i] += rj * z[i]
        s = grad_scale if m == batch else last_scale
        if momentum == 0 and weight_decay == 0 and l1_threshold == 0:
            # The plain step (the tutorial's), written out here: as a call it cost 2x at batch 1.
            for i in range(k * d):
                flat_W[i] = flat_W[i] - lr * (s * flat_gW[i])
            if fit_intercept:
                for j in range(k):
                    b[j] = b[j] - lr * (s * gb[j])
        else:
            _step(
                flat_W,
                flat_gW,
                flat_vW,
                has_vw,
                s,
                lr,
                momentum,
                nesterov,
                weight_decay,
                l1_threshold,
            )
            if fit_intercept:
                _step(b, gb, vb, has_vb, s, lr, momentum, nesterov, zero, zero)
        if momentum != 0:
            has_vw = True
            has_vb = fit_intercept
        total += sse
        rows += m
        window += sse
        window_rows += m
        steps += 1
        start += m
        if steps % check_every == 0 or start >= n:
            mse = window / (window_rows * k)
            if not (mse <= limit):  # also NaN
                return total, rows, True, mse
            window = 0.0
            window_rows = 0
    return total, rows, False, 0.0
