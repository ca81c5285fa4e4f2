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
from fnn.layers.activations import sigmoid
from fnn.layers.core import register
from fnn.tree import freeze

__all__ = ["RNN", "LSTM", "GRU", "Last", "rnn", "lstm", "gru"]


def _time_major(name: str, w_x: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x: (batch, time, n_in)`` as a contiguous ``(time, batch, n_in)`` array; a clear error otherwise."""
    n_in = w_x.shape[0]
    if x.ndim != 3 or x.shape[2] != n_in:
        fix = (
            f"a missing time axis: add it with fnn.Reshape((time, {n_in})) before the layer "
            f"(Reshape((28, 28)) reads a 28x28 image row by row), or x.reshape(len(x), -1, {n_in})"
            if x.ndim == 2
            else f"give sequences of {n_in} features per step"
        )
        raise ValueError(f"{name} takes sequences (batch, time, {n_in}), got shape {x.shape}; {fix}.")
    return np.ascontiguousarray(x.transpose(1, 0, 2))  # (time, batch, n_in)


def _inputs_times(xt: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x_t w + b`` for every step in one product: ``(time, batch, n_out)``."""
    out = xt.reshape(-1, xt.shape[2]) @ w  # (time * batch, n_out)
    out += b
    return out.reshape(xt.shape[0], xt.shape[1], -1)  # (time, batch, n_out)


def _previous(ht: np.ndarray) -> np.ndarray:
    """``h_{t-1}`` for every step, ``h_{-1} = 0``: ``(time, batch, hidden)``."""
    prev = np.empty_like(ht)
    prev[0] = 0
    prev[1:] = ht[:-1]
    return prev


def _joined(xt: np.ndarray, ht: np.ndarray) -> np.ndarray:
    """``[x_t, h_{t-1}]`` side by side for every step, ``h_{-1} = 0``: ``(time, batch, n_in + hidden)``."""
    xh = np.empty(xt.shape[:2] + (xt.shape[2] + ht.shape[2],), ht.dtype)
    xh[:, :, : xt.shape[2]] = xt
    xh[0, :, xt.shape[2] :] = 0
    xh[1:, :, xt.shape[2] :] = ht[:-1]
    return xh


def _param_grads(a: np.ndarray, dz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(a^T dz, dz summed)`` over all steps and examples, for ``a: (time, batch, m)``, ``dz: (time, batch, k)``."""
    dz2 = dz.reshape(-1, dz.shape[-1])  # (time * batch, k)
    return a.reshape(-1, a.shape[2]).T @ dz2, np.add.reduce(dz2, axis=0)  # (m, k), (k,)


def _vjps(grads: Callable[..., tuple[Any, np.ndarray]]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(vjp, param_vjp)`` from ``grads(layer, x, y, dy) -> (dlayer, dz)``: ``dx = dz w_x^T``, batch-first.

    ``param_vjp`` stops at ``dlayer``: a network's first layer skips the ``dx`` product.
    """

    def vjp(layer: Any, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[Any, np.ndarray]:
        dlayer, dz = grads(layer, x, y, dy)
        dxt = dz.reshape(-1, dz.shape[-1]) @ layer.w_x.T  # (time * batch, n_in)
        return dlayer, dxt.reshape(dz.shape[0], dz.shape[1], -1).transpose(1, 0, 2)  # (batch, time, n_in)

    return vjp, lambda layer, x, y, dy: grads(layer, x, y, dy)[0]


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


def _rnn_apply(layer: RNN, x: np.ndarray) -> np.ndarray:
    xt = _time_major("RNN", layer.w_x, x)
    hs = _inputs_times(xt, layer.w_x, layer.b)  # (time, batch, h): x_t w_x + b, overwritten by h_t
    np.tanh(hs[0], out=hs[0])
    for t in range(1, len(hs)):
        hs[t] += hs[t - 1] @ layer.w_h  # (batch, h)
        np.tanh(hs[t], out=hs[t])
    return hs.transpose(1, 0, 2)  # (batch, time, h)


def _rnn_grads(layer: RNN, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[RNN, np.ndarray]:
    """``(dlayer, dz)``: the parameter gradients and ``dz: (time, batch, h)``, from which ``dx`` follows."""
    xt, ht, dyt = _time_major("RNN", layer.w_x, x), y.transpose(1, 0, 2), dy.transpose(1, 0, 2)  # (time, batch, .)
    dz = 1 - ht * ht  # (time, batch, h): tanh', then dz in place
    g = dyt[-1].copy()  # (batch, h)
    for t in range(len(ht) - 1, -1, -1):
        dz[t] *= g
        if t:
            g = dz[t] @ layer.w_h.T  # (batch, h)
            g += dyt[t - 1]
    dw, db = _param_grads(_joined(xt, ht), dz)
    return RNN(dw[: len(layer.w_x)], dw[len(layer.w_x) :], db), dz


_rnn_vjp, _rnn_param_vjp = _vjps(_rnn_grads)
register(RNN, _rnn_apply, _rnn_vjp, param_vjp=_rnn_param_vjp)


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


def _half_for_sigmoids(n: int, gates: str, dtype: np.dtype) -> np.ndarray:
    """``(len(gates) * n,)``: 0.5 over the sigmoid gates, 1 over ``g``/``n`` (the tanh ones)."""
    return np.repeat(np.array([1.0 if c in "gn" else 0.5 for c in gates], dtype), n)


def _lstm_apply(layer: LSTM, x: np.ndarray) -> np.ndarray:
    xt = _time_major("LSTM", layer.w_x, x)
    n, batch = layer.w_h.shape[0], x.shape[0]
    s = _half_for_sigmoids(n, "ifgo", layer.w_h.dtype)  # sigmoid(z) = 0.5 tanh(z / 2) + 0.5
    shift = (s != 1).astype(s.dtype) * s  # 0.5 on i, f, o; 0 on g
    xw = _inputs_times(xt, layer.w_x * s, layer.b * s)  # (time, batch, 4h), halved on i, f, o
    w_h = layer.w_h * s  # (h, 4h)
    hs = np.empty((len(xt), batch, n), xw.dtype)  # (time, batch, h)
    h, c = np.zeros((batch, n), xw.dtype), np.zeros((batch, n), xw.dtype)
    for t in range(len(xt)):
        z = h @ w_h  # (batch, 4h)
        z += xw[t]
        np.tanh(z, out=z)
        z *= s
        z += shift  # i, f, g, o side by side
        c = z[:, n : 2 * n] * c
        c += z[:, :n] * z[:, 2 * n : 3 * n]
        h = np.tanh(c, out=hs[t])
        h *= z[:, 3 * n :]
    return hs.transpose(1, 0, 2)  # (batch, time, h)


def _lstm_grads(layer: LSTM, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[LSTM, np.ndarray]:
    xt, ht, dyt = _time_major("LSTM", layer.w_x, x), y.transpose(1, 0, 2), dy.transpose(1, 0, 2)  # (time, batch, .)
    steps, batch, n = ht.shape
    xh = _joined(xt, ht)  # (time, batch, n_in + h): x_t beside h_{t-1}
    s = _half_for_sigmoids(n, "ifgo", layer.w_h.dtype)  # sigmoid(z) = 0.5 tanh(z / 2) + 0.5
    z = _inputs_times(xh, np.concatenate([layer.w_x, layer.w_h]) * s, layer.b * s)  # every step at once
    np.tanh(z, out=z)
    z *= s
    z += (s != 1) * s  # (time, batch, 4h): the gates i, f, g, o
    z4 = z.reshape(steps, batch, 4, n)  # (time, batch, gate, h); overwritten by p, then by dz
    i, f, g, o = z4[:, :, 0], z4[:, :, 1], z4[:, :, 2], z4[:, :, 3]
    # Three (time, batch, h) work arrays, made once: a few large temporaries fault fewer pages in.
    a, b = np.multiply(i, g), np.empty_like(ht)  # a = i g
    cs = np.empty((steps + 1, batch, n), z.dtype)  # c_{t-1} for t = 0..time: the one elementwise scan
    cs[0] = 0
    for t in range(steps):
        np.multiply(f[t], cs[t], out=cs[t + 1])
        cs[t + 1] += a[t]
    tc = np.tanh(cs[1:], out=a)  # (time, batch, h)
    np.multiply(tc, tc, out=b)
    np.subtract(1, b, out=b)
    b *= o  # b = d c_t / d h_t = o (1 - tanh^2 c)
    tc *= o
    np.subtract(1, o, out=o)
    o *= tc  # p_o = tanh(c) o (1 - o)
    keep_f = a  # f, needed by the scan down
    np.copyto(keep_f, f)
    np.subtract(1, f, out=f)
    f *= keep_f
    f *= cs[:-1]  # p_f = c_{t-1} f (1 - f)
    pi = np.subtract(1, i, out=cs[1:])
    pi *= i
    pi *= g  # g i (1 - i)
    g *= g
    np.subtract(1, g, out=g)
    g *= i  # p_g = i (1 - g^2)
    i[...] = pi  # p_i; now z4 holds p with dz = [dc, dc, dc, dh] * p
    dh, dc = dyt[-1].copy(), np.zeros((batch, n), z.dtype)  # (batch, h)
    for t in range(steps - 1, -1, -1):
        b[t] *= dh
        dc += b[t]
        z4[t, :, :3] *= dc[:, None, :]
        z4[t, :, 3] *= dh  # dz_t, in p_t's place
        if t:
            dc *= keep_f[t]
            np.matmul(z[t], layer.w_h.T, out=dh)  # (batch, h)
            dh += dyt[t - 1]
    dw, db = _param_grads(xh, z)  # z is now dz: (time, batch, 4h)
    return LSTM(dw[: len(layer.w_x)], dw[len(layer.w_x) :], db), z


_lstm_vjp, _lstm_param_vjp = _vjps(_lstm_grads)
register(LSTM, _lstm_apply, _lstm_vjp, param_vjp=_lstm_param_vjp)


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


def _gru_apply(layer: GRU, x: np.ndarray) -> np.ndarray:
    xt = _time_major("GRU", layer.w_x, x)
    n, batch = layer.w_h.shape[0], x.shape[0]
    s = _half_for_sigmoids(n, "rzn", layer.w_h.dtype)  # sigmoid(z) = 0.5 tanh(z / 2) + 0.5
    b = layer.b_x.copy()
    b[: 2 * n] += layer.b_h[: 2 * n]  # b_h of r, z joins the input side; b_hn stays inside r * (.)
    xw = _inputs_times(xt, layer.w_x * s, b * s)  # (time, batch, 3h), halved on r, z
    w_h, b_hn = layer.w_h * s, layer.b_h[2 * n :]
    hs = np.empty((len(xt), batch, n), xw.dtype)  # (time, batch, h)
    h = np.zeros((batch, n), xw.dtype)
    for t in range(len(xt)):
        u = h @ w_h  # (batch, 3h)
        rz = u[:, : 2 * n]
        rz += xw[t, :, : 2 * n]
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5  # r, z side by side
        new = u[:, 2 * n :]
        new += b_hn
        new *= rz[:, :n]
        new += xw[t, :, 2 * n :]
        np.tanh(new, out=new)  # n
        h_t = np.subtract(h, new, out=hs[t])
        h_t *= rz[:, n:]
        h_t += new  # (1 - z) n + z h
        h = h_t
    return hs.transpose(1, 0, 2)  # (batch, time, h)


def _gru_grads(layer: GRU, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> tuple[GRU, np.ndarray]:
    xt, ht, dyt = _time_major("GRU", layer.w_x, x), y.transpose(1, 0, 2), dy.transpose(1, 0, 2)  # (time, batch, .)
    steps, batch, n = ht.shape
    hprev = _previous(ht)
    a = _inputs_times(xt, layer.w_x, layer.b_x).reshape(steps, batch, 3, n)  # (time, batch, gate, h)
    u = _inputs_times(hprev, layer.w_h, layer.b_h).reshape(steps, batch, 3, n)
    r, z = sigmoid(a[:, :, 0] + u[:, :, 0]), sigmoid(a[:, :, 1] + u[:, :, 1])  # (time, batch, h)
    new = np.tanh(a[:, :, 2] + r * u[:, :, 2])
    p = np.empty_like(a)  # da = dh * p
    p[:, :, 2] = (1 - z) * (1 - new * new)
    p[:, :, 1] = (hprev - new) * z * (1 - z)
    p[:, :, 0] = p[:, :, 2] * u[:, :, 2] * r * (1 - r)
    q = p.copy()  # du = dh * q
    q[:, :, 2] *= r
    dhs, du = np.empty_like(ht), np.empty_like(u)  # (time, batch, h), (time, batch, gate, h)
    dh = dyt[-1].copy()  # (batch, h)
    for t in range(steps - 1, -1, -1):
        dhs[t] = dh
        np.multiply(dh[:, None, :], q[t], out=du[t])
        if t:
            dh = du[t].reshape(batch, 3 * n) @ layer.w_h.T  # (batch, h)
            dh += dhs[t] * z[t]
            dh += dyt[t - 1]
    da = (dhs[:, :, None, :] * p).reshape(steps, batch, 3 * n)  # (time, batch, 3h)
    du = du.reshape(steps, batch, 3 * n)
    dw_x, db_x = _param_grads(xt, da)
    dw_h, db_h = _param_grads(hprev, du)
    return GRU(dw_x, dw_h, db_x, db_h), da


_gru_vjp, _gru_param_vjp = _vjps(_gru_grads)
register(GRU, _gru_apply, _gru_vjp, param_vjp=_gru_param_vjp)


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
