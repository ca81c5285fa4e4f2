r"""Recurrent layers: RNN, LSTM and GRU over ``(batch, time, features)``, and ``Last``, the final step.

Each recurrent layer reads ``x: (batch, time, n_in)`` and returns every hidden state,
``(batch, time, n_hidden)``, from ``h_0 = 0``. Matrices are ``(in, out)`` as in
:class:`fnn.Dense` and the gates sit side by side in PyTorch's order, so
``w_x = weight_ih_l0.T`` and ``w_h = weight_hh_l0.T`` map one to one onto
``torch.nn.RNN/LSTM/GRU(batch_first=True)``.

How the passes are computed (the same for the three layers):

- forward: ``x w_x + b`` for all steps in one matrix product, then per step one
  ``h_{t-1} w_h`` product and a few elementwise calls; sigmoids are computed as
  ``0.5 tanh(z / 2) + 0.5``, so one ``tanh`` serves all the gates of a step;
- backward: the output holds every ``h_t``, so every gate pre-activation
  ``z_t = x_t w_x + h_{t-1} w_h + b`` is rebuilt for all steps at once (one matrix
  product, no second sequential loop); what remains sequential is the chain of
  ``dh_{t-1} = dz_t w_h^T`` (plus the cell state's own chain for the LSTM), a few
  calls per step. The parameter gradients are then single products over all steps:

  .. math:: dw_x = \sum_t x_t^T dz_t, \quad dw_h = \sum_t h_{t-1}^T dz_t,
            \quad db = \sum_{t, batch} dz_t, \quad dx_t = dz_t w_x^T

Builders use PyTorch's default initialisation: every weight and bias
``~ U(-1/sqrt(n_hidden), 1/sqrt(n_hidden))``; a single bias ``b`` (RNN, LSTM) is the sum
of two such draws, PyTorch's ``b_ih + b_hh``.

>>> import fnn, numpy as np
>>> net = (fnn.Reshape((28, 28)), lstm(0, 28, 16), Last(), fnn.dense(1, 16, 10))
>>> fnn.forward(net, np.zeros((2, 784), np.float32)).shape
(2, 10)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from fnn import random as fr
from fnn.arguments import positive_int
from fnn.layers.core import register
from fnn.tree import freeze

__all__ = ["RNN", "LSTM", "GRU", "Last", "rnn", "lstm", "gru"]


def _steps(name: str, w_x: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x: (batch, time, n_in)`` as a contiguous ``(time, n_in, batch)``: per step, one column per example.

    A clear error when ``x`` is not a sequence of ``n_in`` features per step.
    """
    n_in = w_x.shape[0]
    if x.ndim != 3 or x.shape[2] != n_in:
        fix = (
            f"a missing time axis: add it with fnn.Reshape((time, {n_in})) before the layer "
            f"(Reshape((28, 28)) reads a 28x28 image row by row), or x.reshape(len(x), -1, {n_in})"
            if x.ndim == 2
            else f"give sequences of {n_in} features per step"
        )
        raise ValueError(f"{name} takes sequences (batch, time, {n_in}), got shape {x.shape}; {fix}.")
    return np.ascontiguousarray(x.transpose(1, 2, 0))  # (time, n_in, batch)


def _blocks(w: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """``w`` with its last axis, ``len(order)`` blocks of equal width side by side, in the block order ``order``.

    >>> _blocks(np.arange(6), (2, 0, 1))
    array([4, 5, 0, 1, 2, 3])
    """
    return w.reshape(w.shape[:-1] + (len(order), -1))[..., order, :].reshape(w.shape)


def _halves(n: int, gates: int, sigmoids: int, dtype: np.dtype) -> np.ndarray:
    r"""``(gates * n, 1)``: 0.5 on the rows of the first ``sigmoids`` gates, 1 on the others.

    :math:`\sigma(z) = \tfrac12 \tanh(z / 2) + \tfrac12`: with their rows of the weights halved,
    one ``tanh`` over a step's gates, then ``* 0.5 + 0.5`` on the sigmoid rows, gives every gate.
    """
    return np.repeat(np.array([0.5] * sigmoids + [1.0] * (gates - sigmoids), dtype), n)[:, None]


def _sigmoid_rows(z: np.ndarray) -> None:
    """``z <- 0.5 z + 0.5`` in place, on a work array of the caller's: the sigmoids from ``tanh(z / 2)``."""
    np.multiply(z, 0.5, out=z)
    np.add(z, 0.5, out=z)


def _outer_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r""":math:`\sum_t a_t b_t^T` for ``a: (time, m, batch)``, ``b: (time, k, batch)``: ``(m, k)``."""
    return np.add.reduce(np.matmul(a, b.transpose(0, 2, 1)), axis=0)  # (m, k)


def _row_sum(a: np.ndarray) -> np.ndarray:
    """``a: (time, k, batch)`` summed over time and batch: ``(k,)``."""
    return np.add.reduce(np.add.reduce(a, axis=2), axis=0)


def _vjps(grads: Callable[..., tuple[Any, np.ndarray, np.ndarray]]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(vjp, param_vjp)`` from ``grads(layer, dy, saved) -> (dlayer, dz, w)``, with ``dx_t = w dz_t``.

    ``dz: (time, k, batch)`` is the gradient of the input side's pre-activations and ``w: (n_in, k)``
    the matching input weights. ``param_vjp`` stops at ``dlayer``: a network's first layer skips
    the ``dx`` product.
    """

    def vjp(layer: Any, x: np.ndarray, y: np.ndarray, dy: np.ndarray, saved: Any) -> tuple[Any, np.ndarray]:
        dlayer, dz, w = grads(layer, dy, saved)
        return dlayer, np.matmul(w, dz).transpose(2, 0, 1)  # (time, n_in, batch) -> (batch, time, n_in)

    def param_vjp(layer: Any, x: np.ndarray, y: np.ndarray, dy: np.ndarray, saved: Any) -> Any:
        return grads(layer, dy, saved)[0]

    return vjp, param_vjp


def _register(layer_type: type, forward: Callable[..., Any], grads: Callable[..., Any]) -> None:
    """Register a recurrent layer from its ``forward -> (y, saved)`` and ``grads`` (see :func:`_vjps`)."""
    vjp, param_vjp = _vjps(grads)
    register(layer_type, forward=forward, vjp=vjp, param_vjp=param_vjp)


# ---------------------------------------------------------------------------
# RNN
# ---------------------------------------------------------------------------


class RNN(NamedTuple):
    r"""Elman RNN: :math:`h_t = \tanh(x_t w_x + h_{t-1} w_h + b)`, ``h_0 = 0``; returns every ``h_t``.

    Fields: ``w_x: (n_in, h)``, ``w_h: (h, h)``, ``b: (h,)``. Backward, from the last step down,
    with :math:`g_t = dy_t + dz_{t+1} w_h^T` the gradient reaching :math:`h_t`:

    .. math:: dz_t = g_t \odot (1 - h_t^2)

    and the parameter and input gradients of the module docstring.
    """

    w_x: np.ndarray
    w_h: np.ndarray
    b: np.ndarray


class _RNNSaved(NamedTuple):
    x: np.ndarray  # (time, n_in, batch)
    h: np.ndarray  # (time + 1, h, batch): h_{t-1} at t, h_{-1} = 0 first


def _rnn_forward(layer: RNN, x: np.ndarray) -> tuple[np.ndarray, _RNNSaved]:
    xs = _steps("RNN", layer.w_x, x)  # (time, n_in, batch)
    pre = np.matmul(layer.w_x.T, xs)  # (time, h, batch)
    steps, n, batch = pre.shape
    hs = np.empty((steps + 1, n, batch), pre.dtype)  # (time + 1, h, batch)
    hs[0] = 0
    np.add(pre, layer.b[:, None], out=hs[1:])  # x_t w_x + b, then h_t
    w_h, work = layer.w_h.T, np.empty((n, batch), pre.dtype)  # (h, h), (h, batch)
    for t in range(1, steps + 1):
        if t > 1:
            np.add(hs[t], np.matmul(w_h, hs[t - 1], out=work), out=hs[t])
        np.tanh(hs[t], out=hs[t])
    return hs[1:].transpose(2, 0, 1), _RNNSaved(xs, hs)  # (batch, time, h)


def _rnn_grads(layer: RNN, dy: np.ndarray, saved: _RNNSaved) -> tuple[RNN, np.ndarray, np.ndarray]:
    xs, hs = saved
    dyt = dy.transpose(1, 2, 0)  # (time, h, batch)
    dz = np.multiply(hs[1:], hs[1:])  # (time, h, batch): 1 - h_t^2, then dz in place
    np.subtract(1, dz, out=dz)
    g = dyt[-1].copy()  # (h, batch)
    for t in range(len(dz) - 1, -1, -1):
        np.multiply(dz[t], g, out=dz[t])
        if t:
            np.add(np.matmul(layer.w_h, dz[t], out=g), dyt[t - 1], out=g)
    return RNN(_outer_sum(xs, dz), _outer_sum(hs[:-1], dz), _row_sum(dz)), dz, layer.w_x


_register(RNN, _rnn_forward, _rnn_grads)


# ---------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------


class LSTM(NamedTuple):
    r"""Long short-term memory, PyTorch's gate order i, f, g, o; returns every ``h_t``.

    Fields: ``w_x: (n_in, 4h)``, ``w_h: (h, 4h)``, ``b: (4h,)`` (PyTorch's ``b_ih + b_hh``).
    With :math:`z_t = x_t w_x + h_{t-1} w_h + b` split into four blocks of ``h``:

    .. math:: i, f, o = \sigma(z_i), \sigma(z_f), \sigma(z_o), \quad g = \tanh z_g, \quad
              c_t = f c_{t-1} + i g, \quad h_t = o \tanh c_t

    Backward, from the last step down, with :math:`\delta h_t = dy_t + dz_{t+1} w_h^T` and
    :math:`\delta c_t = \delta c_{t+1} f_{t+1} + \delta h_t\, o (1 - \tanh^2 c_t)`:

    .. math:: dz_i = \delta c\, g\, i (1 - i), \quad dz_f = \delta c\, c_{t-1} f (1 - f), \quad
              dz_g = \delta c\, i (1 - g^2), \quad dz_o = \delta h \tanh c_t\, o (1 - o)

    and the parameter and input gradients of the module docstring.
    """

    w_x: np.ndarray
    w_h: np.ndarray
    b: np.ndarray


#: The LSTM's gates inside its passes: o, i, f, g (PyTorch's blocks 3, 0, 1, 2), so that the three
#: sigmoids sit side by side (one ``* 0.5 + 0.5``) and so do the three gates scaled by ``dc``.
_OIFG = (3, 0, 1, 2)
_IFGO = (1, 2, 3, 0)  # back to PyTorch's i, f, g, o


class _LSTMSaved(NamedTuple):
    x: np.ndarray  # (time, n_in, batch)
    gates: np.ndarray  # (time, 4h, batch): o, i, f, g
    c: np.ndarray  # (time + 1, h, batch): c_{t-1} at t, c_{-1} = 0 first
    tanh_c: np.ndarray  # (time, h, batch)
    h: np.ndarray  # (time + 1, h, batch): h_{t-1} at t, h_{-1} = 0 first


def _lstm_forward(layer: LSTM, x: np.ndarray) -> tuple[np.ndarray, _LSTMSaved]:
    xs = _steps("LSTM", layer.w_x, x)  # (time, n_in, batch)
    n = layer.w_h.shape[0]
    half = _halves(n, 4, 3, layer.w_h.dtype)  # (4h, 1)
    gates = np.matmul(_blocks(layer.w_x, _OIFG).T * half, xs)  # (time, 4h, batch): z_t, halved on o, i, f
    gates += _blocks(layer.b, _OIFG)[:, None] * half
    steps, _, batch = gates.shape
    w_h = _blocks(layer.w_h, _OIFG).T * half  # (4h, h)
    hs, cs = np.zeros((steps + 1, n, batch), gates.dtype), np.zeros((steps + 1, n, batch), gates.dtype)
    tc = np.empty((steps, n, batch), gates.dtype)
    work, ig = np.empty((4 * n, batch), gates.dtype), np.empty((n, batch), gates.dtype)
    for t in range(steps):
        z = gates[t]  # (4h, batch): z_t, then the gates o, i, f, g
        if t:
            np.add(z, np.matmul(w_h, hs[t], out=work), out=z)
        np.tanh(z, out=z)
        _sigmoid_rows(z[: 3 * n])
        np.multiply(z[2 * n : 3 * n], cs[t], out=cs[t + 1])
        np.add(cs[t + 1], np.multiply(z[n : 2 * n], z[3 * n :], out=ig), out=cs[t + 1])  # f c + i g
        np.multiply(z[:n], np.tanh(cs[t + 1], out=tc[t]), out=hs[t + 1])  # o tanh c
    return hs[1:].transpose(2, 0, 1), _LSTMSaved(xs, gates, cs, tc, hs)  # (batch, time, h)


def _lstm_grads(layer: LSTM, dy: np.ndarray, saved: _LSTMSaved) -> tuple[LSTM, np.ndarray, np.ndarray]:
    xs, gates, cs, tc, hs = saved
    steps, n4, batch = gates.shape
    n = n4 // 4
    gate = gates.reshape(steps, 4, n, batch)
    o, i, f, g = gate[:, 0], gate[:, 1], gate[:, 2], gate[:, 3]  # (time, h, batch) each
    dz = np.subtract(1, gates)  # (time, 4h, batch): p, with dz = [dh, dc, dc, dc] p, then dz in place
    p = dz.reshape(steps, 4, n, batch)  # (time, gate, h, batch)
    np.multiply(dz[:, : 3 * n], gates[:, : 3 * n], out=dz[:, : 3 * n])  # sigma (1 - sigma) on o, i, f
    np.multiply(p[:, 0], tc, out=p[:, 0])  # p_o = tanh c o (1 - o)
    np.multiply(p[:, 1], g, out=p[:, 1])  # p_i = g i (1 - i)
    np.multiply(p[:, 2], cs[:-1], out=p[:, 2])  # p_f = c_{t-1} f (1 - f)
    np.multiply(g, g, out=p[:, 3])
    np.subtract(1, p[:, 3], out=p[:, 3])
    np.multiply(p[:, 3], i, out=p[:, 3])  # p_g = i (1 - g^2)
    dcdh = np.multiply(tc, tc)  # (time, h, batch): d c_t / d h_t = o (1 - tanh^2 c_t)
    np.subtract(1, dcdh, out=dcdh)
    np.multiply(dcdh, o, out=dcdh)
    dyt = dy.transpose(1, 2, 0)  # (time, h, batch)
    w_h = _blocks(layer.w_h, _OIFG)  # (h, 4h)
    dh, dc, work = dyt[-1].copy(), np.zeros((n, batch), dz.dtype), np.empty((n, batch), dz.dtype)
    for t in range(steps - 1, -1, -1):
        np.add(dc, np.multiply(dh, dcdh[t], out=work), out=dc)
        np.multiply(p[t, 0], dh, out=p[t, 0])
        np.multiply(p[t, 1:], dc, out=p[t, 1:])  # (3, h, batch): i, f, g
        if t:
            np.multiply(dc, f[t], out=dc)
            np.add(np.matmul(w_h, dz[t], out=dh), dyt[t - 1], out=dh)
    dw_x, dw_h, db = _outer_sum(xs, dz), _outer_sum(hs[:-1], dz), _row_sum(dz)  # (n_in, 4h), (h, 4h), (4h,)
    return LSTM(_blocks(dw_x, _IFGO), _blocks(dw_h, _IFGO), _blocks(db, _IFGO)), dz, _blocks(layer.w_x, _OIFG)


_register(LSTM, _lstm_forward, _lstm_grads)


# ---------------------------------------------------------------------------
# GRU
# ---------------------------------------------------------------------------


class GRU(NamedTuple):
    r"""Gated recurrent unit, PyTorch's gates r, z, n; returns every ``h_t``.

    Fields: ``w_x: (n_in, 3h)``, ``w_h: (h, 3h)``, ``b_x, b_h: (3h,)``. With
    :math:`a = x_t w_x + b_x` and :math:`u = h_{t-1} w_h + b_h` split into blocks r, z, n:

    .. math:: r, z = \sigma(a_r + u_r), \sigma(a_z + u_z), \quad n = \tanh(a_n + r\, u_n), \quad
              h_t = (1 - z)\, n + z\, h_{t-1}

    Backward, from the last step down, with :math:`\delta h_t = dy_t + \delta h_{t+1} z_{t+1} + du_{t+1} w_h^T`:

    .. math:: da_n = \delta h (1 - z)(1 - n^2), \quad da_z = \delta h (h_{t-1} - n) z (1 - z), \quad
              da_r = da_n\, u_n\, r (1 - r), \quad du = [da_r, da_z, da_n r]

    so :math:`dw_x = \sum_t x_t^T da`, :math:`dw_h = \sum_t h_{t-1}^T du`, ``db_x``, ``db_h`` their sums
    and :math:`dx_t = da_t w_x^T`.
    """

    w_x: np.ndarray
    w_h: np.ndarray
    b_x: np.ndarray
    b_h: np.ndarray


class _GRUSaved(NamedTuple):
    x: np.ndarray  # (time, n_in, batch)
    gates: np.ndarray  # (time, 3h, batch): r, z, n
    u_n: np.ndarray  # (time, h, batch): h_{t-1} w_hn + b_hn
    h: np.ndarray  # (time + 1, h, batch): h_{t-1} at t, h_{-1} = 0 first


#: The GRU's backward keeps [da_n, da_r, da_z, du_n] side by side: da is the first three blocks
#: (n, r, z: PyTorch's 2, 0, 1) and du the last three (r, z, n, as PyTorch's), since da_r, da_z = du_r, du_z.
_NRZ = (2, 0, 1)
_RZN = (1, 2, 0)  # back to PyTorch's r, z, n


def _gru_forward(layer: GRU, x: np.ndarray) -> tuple[np.ndarray, _GRUSaved]:
    xs = _steps("GRU", layer.w_x, x)  # (time, n_in, batch)
    n = layer.w_h.shape[0]
    half = _halves(n, 3, 2, layer.w_h.dtype)  # (3h, 1)
    b = layer.b_x.copy()
    b[: 2 * n] += layer.b_h[: 2 * n]  # b_h of r, z joins the input side; b_hn stays inside r * (.)
    gates = np.matmul(layer.w_x.T * half, xs)  # (time, 3h, batch): a_t, halved on r, z; then the gates
    gates += b[:, None] * half
    steps, _, batch = gates.shape
    w_h, b_hn = layer.w_h.T * half, layer.b_h[2 * n :, None]  # (3h, h), (h, 1)
    hs = np.zeros((steps + 1, n, batch), gates.dtype)  # (time + 1, h, batch)
    u_n = np.empty((steps, n, batch), gates.dtype)
    u, rn = np.empty((3 * n, batch), gates.dtype), np.empty((n, batch), gates.dtype)
    for t in range(steps):
        rz, new = gates[t, : 2 * n], gates[t, 2 * n :]  # (2h, batch), (h, batch)
        np.matmul(w_h, hs[t], out=u)  # (3h, batch)
        np.add(rz, u[: 2 * n], out=rz)
        np.tanh(rz, out=rz)
        _sigmoid_rows(rz)
        np.add(u[2 * n :], b_hn, out=u_n[t])
        np.add(new, np.multiply(rz[:n], u_n[t], out=rn), out=new)
        np.tanh(new, out=new)
        np.subtract(hs[t], new, out=hs[t + 1])
        np.multiply(hs[t + 1], rz[n:], out=hs[t + 1])
        np.add(hs[t + 1], new, out=hs[t + 1])  # (1 - z) n + z h_{t-1}
    return hs[1:].transpose(2, 0, 1), _GRUSaved(xs, gates, u_n, hs)  # (batch, time, h)


def _gru_grads(layer: GRU, dy: np.ndarray, saved: _GRUSaved) -> tuple[GRU, np.ndarray, np.ndarray]:
    xs, gates, u_n, hs = saved
    steps, n3, batch = gates.shape
    n = n3 // 3
    gate = gates.reshape(steps, 3, n, batch)
    r, z, new = gate[:, 0], gate[:, 1], gate[:, 2]  # (time, h, batch) each
    d = np.empty((steps, 4 * n, batch), gates.dtype)  # [da_n, da_r, da_z, du_n] = dh p, p in place first
    p = d.reshape(steps, 4, n, batch)  # (time, block, h, batch)
    np.subtract(1, z, out=p[:, 2])  # 1 - z
    np.multiply(new, new, out=p[:, 0])
    np.subtract(1, p[:, 0], out=p[:, 0])
    np.multiply(p[:, 0], p[:, 2], out=p[:, 0])  # p_n = (1 - z)(1 - n^2)
    np.multiply(p[:, 2], z, out=p[:, 2])
    np.multiply(p[:, 2], np.subtract(hs[:-1], new, out=p[:, 3]), out=p[:, 2])  # p_z = (h_{t-1} - n) z (1 - z)
    np.subtract(1, r, out=p[:, 1])
    np.multiply(p[:, 1], r, out=p[:, 1])
    np.multiply(p[:, 1], u_n, out=p[:, 1])
    np.multiply(p[:, 1], p[:, 0], out=p[:, 1])  # p_r = p_n u_n r (1 - r)
    np.multiply(p[:, 0], r, out=p[:, 3])  # p_n r, for du_n
    dyt = dy.transpose(1, 2, 0)  # (time, h, batch)
    dh, nxt, work = dyt[-1].copy(), np.empty((n, batch), d.dtype), np.empty((n, batch), d.dtype)  # (h, batch)
    for t in range(steps - 1, -1, -1):
        np.multiply(p[t], dh, out=p[t])  # (4, h, batch)
        if t:
            np.matmul(layer.w_h, d[t, n:], out=nxt)  # du_t w_h^T
            np.add(nxt, np.multiply(dh, z[t], out=work), out=nxt)
            np.add(nxt, dyt[t - 1], out=nxt)
            dh, nxt = nxt, dh
    da, du = d[:, : 3 * n], d[:, n:]  # (time, 3h, batch) each
    grads = GRU(_blocks(_outer_sum(xs, da), _RZN), _outer_sum(hs[:-1], du), _blocks(_row_sum(da), _RZN), _row_sum(du))
    return grads, da, _blocks(layer.w_x, _NRZ)


_register(GRU, _gru_forward, _gru_grads)


# ---------------------------------------------------------------------------
# Last
# ---------------------------------------------------------------------------


class Last(NamedTuple):
    """The last step of a sequence: ``(batch, time, f) -> (batch, f)``; ``dx`` is ``dy`` at the last step, 0 elsewhere.

    >>> import fnn, numpy as np
    >>> fnn.forward((Last(),), np.arange(12.0).reshape(1, 3, 4))
    array([[ 8.,  9., 10., 11.]], dtype=float32)
    """


def _last_apply(layer: Last, x: np.ndarray) -> np.ndarray:
    if x.ndim < 3:
        raise ValueError(
            f"Last takes sequences (batch, time, features), got shape {x.shape}; "
            "put it after a recurrent layer, which returns every step."
        )
    return x[:, -1]  # (batch, features)


def _last_vjp(layer: Last, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[Last, np.ndarray]:
    dx = np.zeros(x.shape, dy.dtype)  # (batch, time, features)
    dx[:, -1] = dy
    return layer, dx


register(Last, _last_apply, _last_vjp)


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


def _uniform(key: fr.KeyLike, n_in: Any, n_hidden: Any, gates: int, dtype: Any, biases: int) -> list[np.ndarray]:
    """``w_x, w_h`` and the bias draws ``~ U(-k, k)``, ``k = 1/sqrt(n_hidden)`` (PyTorch's default)."""
    n_in, n_hidden = positive_int(n_in, "n_in"), positive_int(n_hidden, "n_hidden")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a float type such as np.float32, got {dtype}.")
    g, k, m = fr.generator(key), 1.0 / np.sqrt(n_hidden), gates * n_hidden
    shapes = [(n_in, m), (n_hidden, m)] + [(m,)] * biases
    return [g.uniform(-k, k, shape).astype(dtype) for shape in shapes]


def rnn(key: fr.KeyLike, n_in: int, n_hidden: int, dtype: Any = np.float32) -> RNN:
    """An :class:`RNN` with PyTorch's default initialisation, drawn from ``key``.

    >>> [a.shape for a in rnn(0, 28, 64)]
    [(28, 64), (64, 64), (64,)]
    """
    w_x, w_h, b_ih, b_hh = _uniform(key, n_in, n_hidden, 1, dtype, 2)
    return freeze(RNN(w_x, w_h, b_ih + b_hh))


def lstm(key: fr.KeyLike, n_in: int, n_hidden: int, dtype: Any = np.float32) -> LSTM:
    """An :class:`LSTM` with PyTorch's default initialisation, drawn from ``key``.

    >>> [a.shape for a in lstm(0, 28, 64)]
    [(28, 256), (64, 256), (256,)]
    """
    w_x, w_h, b_ih, b_hh = _uniform(key, n_in, n_hidden, 4, dtype, 2)
    return freeze(LSTM(w_x, w_h, b_ih + b_hh))


def gru(key: fr.KeyLike, n_in: int, n_hidden: int, dtype: Any = np.float32) -> GRU:
    """A :class:`GRU` with PyTorch's default initialisation, drawn from ``key``.

    >>> [a.shape for a in gru(0, 28, 64)]
    [(28, 192), (64, 192), (192,), (192,)]
    """
    return freeze(GRU(*_uniform(key, n_in, n_hidden, 3, dtype, 2)))
