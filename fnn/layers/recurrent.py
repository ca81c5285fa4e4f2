r"""Recurrent layers: RNN, LSTM and GRU over ``(batch, time, features)``, and ``Last``, the final step.

Each recurrent layer reads ``x: (batch, time, n_in)`` and returns every hidden state,
``(batch, time, n_hidden)``, from ``h_0 = 0``. Matrices are ``(in, out)`` as in
:class:`fnn.Dense` and the gates sit side by side in PyTorch's order, so
``w_x = weight_ih_l0.T`` and ``w_h = weight_hh_l0.T`` map one to one onto
``torch.nn.RNN/LSTM/GRU(batch_first=True)``.

How the passes are computed (the same for the three layers). Inside, arrays are laid out
``(time, features, batch)``, so that each step's work is one contiguous block:

- forward: one array ``xh: (time + 1, n_in + 1 + h, batch)`` holds every step's inputs
  ``[x_t, 1, h_{t-1}]`` (the 1 carries the bias); ``x_t w_x + b`` comes for all steps from one
  batched matrix product, then each step is one ``h_{t-1} w_h`` product and a few elementwise
  calls into the layer's own arrays (``out=``), writing ``h_t`` into ``xh``. Sigmoids are
  ``0.5 tanh(z / 2) + 0.5``, so one ``tanh`` serves all the gates of a step. The forward pass
  saves for the backward pass what it computed: ``xh``, the gates, and for the LSTM the cell
  states and ``tanh c_t`` (for the GRU ``h_{t-1} w_hn + b_hn``); nothing is computed twice.
- backward: one loop from the last step down, a few calls per step into ``(k, batch)`` work
  arrays: the gates' derivatives from the saved values, ``dz_t``, then
  ``dh_{t-1} = dz_t w_h^T + dy_{t-1}``; the parameter gradients accumulate one product per step,

  .. math:: [dw_x; db; dw_h] = \sum_t [x_t; 1; h_{t-1}]\, dz_t, \qquad dx_t = dz_t w_x^T

  (``dx`` only when asked: a network's first layer skips it). No ``(time, gates, batch)``
  temporary is made: a step's memory is the saved values.

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
from fnn.arguments import float_dtype, positive_int
from fnn.layers.core import register
from fnn.tree import freeze

__all__ = ["RNN", "LSTM", "GRU", "Last", "rnn", "lstm", "gru"]


def _inputs(name: str, w_x: np.ndarray, w_h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The inputs of every step's products, ``[x_t, 1, h_{t-1}]``: ``(time + 1, n_in + 1 + h, batch)``.

    Holds ``x: (batch, time, n_in)`` per step as columns, a row of ones (the bias) and ``h_{-1} = 0``;
    the forward pass writes each ``h_t`` into ``[t + 1, n_in + 1:]`` (no ``x_time``: zeros).
    A clear error when ``x`` is not a sequence of ``n_in`` features per step.
    """
    n_in, n = w_x.shape[0], w_h.shape[0]
    if x.ndim != 3 or x.shape[2] != n_in:
        fix = (
            f"a missing time axis: add it with fnn.Reshape((time, {n_in})) before the layer "
            f"(Reshape((28, 28)) reads a 28x28 image row by row), or x.reshape(len(x), -1, {n_in})"
            if x.ndim == 2
            else f"give sequences of {n_in} features per step"
        )
        raise ValueError(f"{name} takes sequences (batch, time, {n_in}), got shape {x.shape}; {fix}.")
    batch, steps = x.shape[:2]
    xh = np.empty((steps + 1, n_in + 1 + n, batch), np.result_type(x.dtype, w_x.dtype))
    xh[:steps, :n_in] = x.transpose(1, 2, 0)  # (time, n_in, batch)
    xh[steps, :n_in] = 0
    xh[:, n_in] = 1
    xh[0, n_in + 1 :] = 0
    return xh


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


def _vjps(grads: Callable[..., tuple[Any, np.ndarray | None]]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``(vjp, param_vjp)`` from ``grads(layer, dy, saved, want_dx) -> (dlayer, dx)``, ``dx: (time, n_in, batch)``
    or ``None`` when not wanted: a network's first layer (``param_vjp``) skips the ``dx`` products."""

    def vjp(layer: Any, x: np.ndarray, y: np.ndarray, dy: np.ndarray, saved: Any) -> tuple[Any, np.ndarray]:
        dlayer, dx = grads(layer, dy, saved, True)
        assert dx is not None  # asked for
        return dlayer, dx.transpose(2, 0, 1)  # (batch, time, n_in)

    def param_vjp(layer: Any, x: np.ndarray, y: np.ndarray, dy: np.ndarray, saved: Any) -> Any:
        return grads(layer, dy, saved, False)[0]

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


def _rnn_forward(layer: RNN, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xh = _inputs("RNN", layer.w_x, layer.w_h, x)  # (time + 1, n_in + 1 + h, batch); saved
    n_in = len(layer.w_x)
    z = np.matmul(np.vstack([layer.w_x, layer.b[None]]).T, xh[:-1, : n_in + 1])  # (time, h, batch): x_t w_x + b
    hs, w_h, work = xh[:, n_in + 1 :], layer.w_h.T, np.empty(z.shape[1:], z.dtype)  # h_{t-1} at t, (h, h), (h, batch)
    for t in range(len(z)):
        if t:
            np.add(z[t], np.matmul(w_h, hs[t], out=work), out=z[t])
        np.tanh(z[t], out=hs[t + 1])
    return hs[1:].transpose(2, 0, 1), xh  # (batch, time, h)


def _rnn_grads(layer: RNN, dy: np.ndarray, xh: np.ndarray, want_dx: bool) -> tuple[RNN, np.ndarray | None]:
    steps, k, batch = xh.shape[0] - 1, xh.shape[1], xh.shape[2]
    n_in, n = len(layer.w_x), len(layer.w_h)
    hs, dyt = xh[1:, n_in + 1 :], dy.transpose(1, 2, 0)  # (time, h, batch) each
    dxs = np.empty((steps, n_in, batch), xh.dtype) if want_dx else None  # (time, n_in, batch)
    g, dz = dyt[-1].copy(), np.empty((n, batch), xh.dtype)  # (h, batch): dL/dh_t, dz_t
    grad, gt = np.zeros((n, k), xh.dtype), np.empty((n, k), xh.dtype)  # (h, n_in + 1 + h)
    for t in range(steps - 1, -1, -1):
        np.multiply(hs[t], hs[t], out=dz)
        np.subtract(1, dz, out=dz)
        np.multiply(dz, g, out=dz)  # dz_t = g (1 - h_t^2)
        np.add(grad, np.matmul(dz, xh[t].T, out=gt), out=grad)
        if dxs is not None:
            np.matmul(layer.w_x, dz, out=dxs[t])
        if t:
            np.add(np.matmul(layer.w_h, dz, out=g), dyt[t - 1], out=g)
    d = np.ascontiguousarray(grad.T)  # (n_in + 1 + h, h): w_x, b, w_h
    return RNN(d[:n_in], d[n_in + 1 :], d[n_in]), dxs


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
    xh: np.ndarray  # (time + 1, n_in + 1 + h, batch): [x_t, 1, h_{t-1}] at t
    gates: np.ndarray  # (time, 4h, batch): o, i, f, g
    c: np.ndarray  # (time + 1, h, batch): c_{t-1} at t, c_{-1} = 0 first
    tanh_c: np.ndarray  # (time, h, batch)


def _lstm_forward(layer: LSTM, x: np.ndarray) -> tuple[np.ndarray, _LSTMSaved]:
    xh = _inputs("LSTM", layer.w_x, layer.w_h, x)  # (time + 1, n_in + 1 + h, batch)
    n_in, n = len(layer.w_x), len(layer.w_h)
    half = _halves(n, 4, 3, xh.dtype)  # (4h, 1)
    w_in = _blocks(np.vstack([layer.w_x, layer.b[None]]), _OIFG).T * half  # (4h, n_in + 1)
    gates = np.matmul(w_in, xh[:-1, : n_in + 1])  # (time, 4h, batch): z_t (halved on o, i, f), then the gates
    w_h = _blocks(layer.w_h, _OIFG).T * half  # (4h, h)
    hs = xh[:, n_in + 1 :]  # (time + 1, h, batch): h_{t-1} at t
    cs = np.zeros((len(hs), n, xh.shape[2]), xh.dtype)  # (time + 1, h, batch): c_{t-1} at t
    tc = np.empty_like(cs[1:])  # (time, h, batch)
    work, ig = np.empty_like(gates[0]), np.empty_like(cs[0])  # (4h, batch), (h, batch)
    for t in range(len(gates)):
        z = gates[t]  # (4h, batch)
        if t:
            np.add(z, np.matmul(w_h, hs[t], out=work), out=z)
        np.tanh(z, out=z)
        _sigmoid_rows(z[: 3 * n])
        np.multiply(z[2 * n : 3 * n], cs[t], out=cs[t + 1])
        np.add(cs[t + 1], np.multiply(z[n : 2 * n], z[3 * n :], out=ig), out=cs[t + 1])  # f c + i g
        np.multiply(z[:n], np.tanh(cs[t + 1], out=tc[t]), out=hs[t + 1])  # o tanh c
    return hs[1:].transpose(2, 0, 1), _LSTMSaved(xh, gates, cs, tc)  # (batch, time, h)


def _lstm_grads(layer: LSTM, dy: np.ndarray, saved: _LSTMSaved, want_dx: bool) -> tuple[LSTM, np.ndarray | None]:
    xh, gates, cs, tc = saved
    steps, n4, batch = gates.shape
    n_in, n = len(layer.w_x), n4 // 4
    dyt, w_h, w_x = dy.transpose(1, 2, 0), _blocks(layer.w_h, _OIFG), _blocks(layer.w_x, _OIFG)  # (time, h, batch)
    dxs = np.empty((steps, n_in, batch), gates.dtype) if want_dx else None  # (time, n_in, batch)
    dh, dc = dyt[-1].copy(), np.zeros((n, batch), gates.dtype)  # (h, batch)
    q, r = np.empty_like(dc), np.empty_like(dc)
    dz, grad = np.empty_like(gates[0]), np.zeros((n4, xh.shape[1]), gates.dtype)  # (4h, batch), (4h, k)
    gt = np.empty_like(grad)
    for t in range(steps - 1, -1, -1):
        z = gates[t]  # (4h, batch): o, i, f, g
        o, i, f, g = z[:n], z[n : 2 * n], z[2 * n : 3 * n], z[3 * n :]
        np.multiply(dh, o, out=q)  # dh o
        np.multiply(q, tc[t], out=r)  # dh o tanh c
        np.multiply(z, z, out=dz)
        np.subtract(z[: 3 * n], dz[: 3 * n], out=dz[: 3 * n])  # sigma (1 - sigma) on o, i, f
        np.subtract(1, dz[3 * n :], out=dz[3 * n :])  # 1 - g^2
        np.multiply(dz[:n], tc[t], out=dz[:n])
        np.multiply(dz[:n], dh, out=dz[:n])  # dz_o = dh tanh c o (1 - o)
        np.add(dc, q, out=dc)
        np.multiply(r, tc[t], out=r)
        np.subtract(dc, r, out=dc)  # dc += dh o (1 - tanh^2 c)
        np.multiply(dz[n : 2 * n], g, out=dz[n : 2 * n])
        np.multiply(dz[2 * n : 3 * n], cs[t], out=dz[2 * n : 3 * n])
        np.multiply(dz[3 * n :], i, out=dz[3 * n :])
        np.multiply(dz[n:].reshape(3, n, batch), dc, out=dz[n:].reshape(3, n, batch))  # dz_i, dz_f, dz_g
        np.add(grad, np.matmul(dz, xh[t].T, out=gt), out=grad)
        if dxs is not None:
            np.matmul(w_x, dz, out=dxs[t])
        if t:
            np.multiply(dc, f, out=dc)
            np.add(np.matmul(w_h, dz, out=dh), dyt[t - 1], out=dh)
    d = np.ascontiguousarray(_blocks(grad.T, _IFGO))  # (n_in + 1 + h, 4h): w_x, b, w_h
    return LSTM(d[:n_in], d[n_in + 1 :], d[n_in]), dxs


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
    xh: np.ndarray  # (time + 1, n_in + 1 + h, batch): [x_t, 1, h_{t-1}] at t
    gates: np.ndarray  # (time, 3h, batch): r, z, n
    u_n: np.ndarray  # (time, h, batch): h_{t-1} w_hn + b_hn


#: The GRU's backward keeps [da_n, da_r, da_z, du_n] side by side: da is the first three blocks
#: (n, r, z: PyTorch's 2, 0, 1) and du the last three (r, z, n, as PyTorch's), since da_r, da_z = du_r, du_z.
_NRZ = (2, 0, 1)
_RZN = (1, 2, 0)  # back to PyTorch's r, z, n


def _gru_forward(layer: GRU, x: np.ndarray) -> tuple[np.ndarray, _GRUSaved]:
    xh = _inputs("GRU", layer.w_x, layer.w_h, x)  # (time + 1, n_in + 1 + h, batch)
    n_in, n = len(layer.w_x), len(layer.w_h)
    half = _halves(n, 3, 2, xh.dtype)  # (3h, 1)
    gates = np.matmul(np.vstack([layer.w_x, layer.b_x[None]]).T * half, xh[:-1, : n_in + 1])  # (time, 3h, batch)
    w_u = np.vstack([layer.b_h[None], layer.w_h]).T * half  # (3h, 1 + h): u = b_h + h_{t-1} w_h, halved on r, z
    hs = xh[:, n_in + 1 :]  # (time + 1, h, batch): h_{t-1} at t
    u_n = np.empty_like(hs[1:])  # (time, h, batch)
    u, rn = np.empty_like(gates[0]), np.empty_like(hs[0])  # (3h, batch), (h, batch)
    for t in range(len(gates)):
        rz, new = gates[t, : 2 * n], gates[t, 2 * n :]  # a_t, then r, z and n: (2h, batch), (h, batch)
        np.matmul(w_u, xh[t, n_in:], out=u)  # (3h, batch)
        np.add(rz, u[: 2 * n], out=rz)
        np.tanh(rz, out=rz)
        _sigmoid_rows(rz)
        np.copyto(u_n[t], u[2 * n :])
        np.add(new, np.multiply(rz[:n], u_n[t], out=rn), out=new)
        np.tanh(new, out=new)
        np.subtract(hs[t], new, out=hs[t + 1])
        np.multiply(hs[t + 1], rz[n:], out=hs[t + 1])
        np.add(hs[t + 1], new, out=hs[t + 1])  # (1 - z) n + z h_{t-1}
    return hs[1:].transpose(2, 0, 1), _GRUSaved(xh, gates, u_n)  # (batch, time, h)


def _gru_grads(layer: GRU, dy: np.ndarray, saved: _GRUSaved, want_dx: bool) -> tuple[GRU, np.ndarray | None]:
    xh, gates, u_n = saved
    steps, n3, batch = gates.shape
    n_in, n = len(layer.w_x), n3 // 3
    dyt, w_x = dy.transpose(1, 2, 0), _blocks(layer.w_x, _NRZ)  # (time, h, batch), (n_in, 3h): n, r, z
    dxs = np.empty((steps, n_in, batch), gates.dtype) if want_dx else None  # (time, n_in, batch)
    dh, nxt, work = dyt[-1].copy(), np.empty((n, batch), gates.dtype), np.empty((n, batch), gates.dtype)
    d = np.empty((4 * n, batch), gates.dtype)  # [da_n, da_r, da_z, du_n]: da the first 3h, du the last 3h
    da_n, da_r, da_z, du_n = d[:n], d[n : 2 * n], d[2 * n : 3 * n], d[3 * n :]
    ga, gu = np.zeros((n3, n_in + 1), gates.dtype), np.zeros((n3, n + 1), gates.dtype)  # (3h, n_in + 1), (3h, 1 + h)
    ta, tu = np.empty_like(ga), np.empty_like(gu)
    for t in range(steps - 1, -1, -1):
        r, z, new = gates[t, :n], gates[t, n : 2 * n], gates[t, 2 * n :]  # (h, batch) each
        np.subtract(1, z, out=work)
        np.multiply(new, new, out=da_n)
        np.subtract(1, da_n, out=da_n)
        np.multiply(da_n, work, out=da_n)
        np.multiply(da_n, dh, out=da_n)  # da_n = dh (1 - z)(1 - n^2)
        np.multiply(work, z, out=da_z)
        np.multiply(da_z, np.subtract(xh[t, n_in + 1 :], new, out=work), out=da_z)
        np.multiply(da_z, dh, out=da_z)  # da_z = dh (h_{t-1} - n) z (1 - z)
        np.subtract(1, r, out=da_r)
        np.multiply(da_r, r, out=da_r)
        np.multiply(da_r, u_n[t], out=da_r)
        np.multiply(da_r, da_n, out=da_r)  # da_r = da_n u_n r (1 - r)
        np.multiply(da_n, r, out=du_n)
        np.add(ga, np.matmul(d[: 3 * n], xh[t, : n_in + 1].T, out=ta), out=ga)
        np.add(gu, np.matmul(d[n:], xh[t, n_in:].T, out=tu), out=gu)
        if dxs is not None:
            np.matmul(w_x, d[: 3 * n], out=dxs[t])
        if t:
            np.matmul(layer.w_h, d[n:], out=nxt)  # du_t w_h^T
            np.add(nxt, np.multiply(dh, z, out=work), out=nxt)
            np.add(nxt, dyt[t - 1], out=nxt)
            dh, nxt = nxt, dh
    a, u = np.ascontiguousarray(_blocks(ga.T, _RZN)), np.ascontiguousarray(gu.T)  # (n_in + 1, 3h), (1 + h, 3h)
    return GRU(a[:n_in], u[1:], a[n_in], u[0]), dxs


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
    dx = np.zeros(x.shape[1:] + x.shape[:1], dy.dtype)  # (time, features, batch): batch last, as the
    dx[-1] = np.moveaxis(dy, 0, -1)  # recurrent layers' backward reads it, one contiguous block per step
    return layer, np.moveaxis(dx, -1, 0)  # (batch, time, features)


register(Last, _last_apply, _last_vjp)


# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


def _uniform(key: fr.KeyLike, n_in: Any, n_hidden: Any, gates: int, dtype: Any, biases: int) -> list[np.ndarray]:
    """``w_x, w_h`` and the bias draws ``~ U(-k, k)``, ``k = 1/sqrt(n_hidden)`` (PyTorch's default)."""
    n_in, n_hidden = positive_int(n_in, "n_in"), positive_int(n_hidden, "n_hidden")
    dtype = float_dtype(dtype)
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
