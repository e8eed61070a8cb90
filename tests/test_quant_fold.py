"""Folding exactness: the integer comparator decides exactly like the float block it came from.

Every test enumerates the whole integer input grid of a small layer (or a large random sample
of it) and compares `acc >= T` (integer_network.py) with the float computation
u = (s * Wq) (a * xq) + b -> [max-pool] -> c * u + d >= theta, in float64.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn

from spikeforge.integer_network import IntegerNetwork, Pool
from spikeforge.model.layers import HeavisideSpike, HoyerSpike
from spikeforge.model.nets import SpikeBlock
from spikeforge.quant.fold import FloatBlock, QuantError, extract_blocks, fold_block, fold_bn, fold_readout
from spikeforge.quant.quantize import quantize_weight


def grid(fan_in: int, bits: int) -> np.ndarray:
    """Every input vector of `fan_in` unsigned `bits`-bit integers."""
    levels = range(1 << bits)
    return np.array(list(itertools.product(levels, repeat=fan_in)), dtype=np.int64)


def float_fire_dense(blk: FloatBlock, wq: np.ndarray, scale: np.ndarray, xq: np.ndarray) -> np.ndarray:
    """The float block on quantized weights. u = (s a) acc + b is the exact potential evaluated
    from the exact integer accumulator, so ties are decided by one well-defined float expression."""
    a = 1.0 if blk.input_bits == 1 else 1.0 / ((1 << blk.input_bits) - 1)
    u = (scale * a) * (xq @ wq.T) + blk.bias
    y = blk.bn_scale * u + blk.bn_shift
    return y >= blk.theta


def random_bn_block(rng: np.random.Generator, out: int, fan_in: int, bits: int) -> FloatBlock:
    gamma = rng.normal(size=out)
    gamma[0] = -abs(gamma[0])  # at least one flipped channel
    gamma[1] = 0.0  # and one constant channel
    var = rng.uniform(0.1, 2.0, size=out)
    mu, beta = rng.normal(size=out), rng.normal(size=out)
    c = gamma / np.sqrt(var + 1e-5)
    return FloatBlock(
        0,
        "dense",
        rng.normal(size=(out, fan_in)),
        rng.normal(scale=0.3, size=out),
        (fan_in,),
        bn_scale=c,
        bn_shift=beta - c * mu,
        theta=np.full(out, abs(rng.normal()) + 0.1),
        input_bits=bits,
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "bits,fan_in,per_channel", [(1, 10, True), (1, 10, False), (2, 5, True), (3, 4, False), (8, 2, True)]
)
def test_dense_fold_exact_on_whole_grid(seed: int, bits: int, fan_in: int, per_channel: bool) -> None:
    rng = np.random.default_rng(seed)
    blk = random_bn_block(rng, 6, fan_in, bits)
    wq, scale = quantize_weight(blk.weight, 4, per_channel)
    xq = grid(fan_in, bits)
    # thresholds at a grid point's BN output (ties) or between two: both are the risky cases
    a = 1.0 if bits == 1 else 1.0 / ((1 << bits) - 1)
    y = blk.bn_scale * ((scale * a) * (xq @ wq.T) + blk.bias) + blk.bn_shift
    blk.theta = np.where(np.arange(6) % 2 == 0, np.median(y, axis=0), y[len(y) // 3])
    blk.theta[1] = blk.bn_shift[1] - 0.5  # constant channel: always fires
    (layer,), info = fold_block(blk, wq, scale)
    acc = xq @ layer.weight.T
    integer = acc - layer.threshold >= 0
    expected = float_fire_dense(blk, wq, scale, xq)
    assert np.array_equal(integer, expected)
    flipped = [j for j in range(6) if blk.bn_scale[j] < 0]
    assert info.flipped == flipped and 0 in info.flipped
    assert 1 in info.always + info.never and not layer.weight[1].any()
    assert info.always == [1]
    # every input-dependent channel fires on some inputs and not on others
    assert all(0 < integer[:, j].mean() < 1 for j in range(6) if j != 1)


def test_boundary_inputs_fold_to_ceil_and_floor() -> None:
    # u = acc exactly (s = 1, no bias); fire iff u >= 2.5 -> T = 3; flipped: fire iff u <= 2.5 -> -acc >= -2
    w = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    blk = FloatBlock(
        0,
        "dense",
        w,
        np.zeros(2),
        (4,),
        bn_scale=np.array([1.0, -1.0]),
        bn_shift=np.zeros(2),
        theta=np.array([2.5, -2.5]),
    )
    (layer,), _ = fold_block(blk, w.astype(np.int64), np.ones(2))
    assert layer.threshold.tolist() == [3, -2]
    assert layer.weight[1].tolist() == [-1, -1, -1, -1]
    # integer-valued bound: fire iff acc >= 2 (T = 2) / acc <= 2 (T = -2), ties included both ways
    blk.theta = np.array([2.0, -2.0])
    (layer,), _ = fold_block(blk, w.astype(np.int64), np.ones(2))
    xq = grid(4, 1)
    acc = xq @ w.T.astype(np.int64)
    assert np.array_equal(
        acc @ np.diag([1, -1]) - layer.threshold >= 0, np.stack([acc[:, 0] >= 2, acc[:, 1] <= 2], 1)
    )


def test_constant_channel_always_and_never() -> None:
    w = np.ones((2, 3))
    blk = FloatBlock(
        0,
        "dense",
        w,
        np.zeros(2),
        (3,),
        bn_scale=np.zeros(2),
        bn_shift=np.array([1.0, 0.0]),
        theta=np.array([0.5, 0.5]),
    )
    (layer,), info = fold_block(blk, np.ones((2, 3), np.int64), np.ones(2))
    assert info.always == [0] and info.never == [1]
    assert layer.threshold.tolist() == [0, 1] and not layer.weight.any()


def _bn_out(blk: FloatBlock, wq: np.ndarray, scale: np.ndarray, x: np.ndarray) -> np.ndarray:
    """torch float64 conv -> max-pool on the potentials -> BN affine map."""
    conv = nn.Conv2d(
        blk.in_shape[0], blk.outputs, wq.shape[2], stride=blk.stride, padding=blk.padding
    ).double()
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(wq * scale[:, None, None, None]))
        conv.bias.copy_(torch.as_tensor(blk.bias))
        u = conv(torch.as_tensor(x, dtype=torch.float64))
        u = nn.functional.max_pool2d(u, blk.pool[0], blk.pool[1]).numpy()
    return blk.bn_scale[None, :, None, None] * u + blk.bn_shift[None, :, None, None]


def float_conv_pool(blk: FloatBlock, wq: np.ndarray, scale: np.ndarray, x: np.ndarray) -> np.ndarray:
    return _bn_out(blk, wq, scale, x) >= blk.theta[None, :, None, None]


@pytest.mark.parametrize("seed", range(2))
def test_conv_maxpool_negative_gamma_gives_and(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cout = 4
    c = np.array([1.3, -0.7, 0.9, -2.0])
    blk = FloatBlock(
        0,
        "conv",
        rng.normal(size=(cout, 1, 2, 2)),
        rng.normal(scale=0.2, size=cout),
        (1, 4, 4),
        stride=1,
        padding=1,
        pool=(2, 2),
        bn_scale=c,
        bn_shift=rng.normal(size=cout),
        theta=np.abs(rng.normal(size=cout)),
    )
    wq, scale = quantize_weight(blk.weight, 3, per_channel=True)
    x = grid(16, 1).reshape(-1, 1, 4, 4)  # all 65536 binary 4x4 maps
    # thresholds inside the range of BN outputs, off the ties (ties are covered by the dense test)
    blk.theta = np.full(cout, -np.inf)
    y = [
        np.unique(np.round(v, 9)) for v in _bn_out(blk, wq, scale, x).transpose(1, 0, 2, 3).reshape(cout, -1)
    ]
    blk.theta = np.array([(v[len(v) // 2 - 1] + v[len(v) // 2]) / 2 for v in y], dtype=np.float64)
    layers, info = fold_block(blk, wq, scale)
    conv, pool = layers
    assert pool.mode.tolist() == [0, 1, 0, 1] and info.flipped == [1, 3]
    net_layers = [conv, pool]
    act = x
    for layer in net_layers:
        if layer.kind == "pool":
            act = layer.apply(act)
        else:
            cols = layer.im2col(act)
            acc = (cols @ layer.weight_matrix().T).transpose(0, 2, 1).reshape(len(x), cout, *layer.out_hw)
            act = conv_spikes = acc - layer.threshold[None, :, None, None] >= 0
    expected = float_conv_pool(blk, wq, scale, x.astype(np.float64))
    assert np.array_equal(act, expected)
    # every channel is input-dependent, so OR on a flipped channel would give a different answer
    assert all(0 < expected[:, j].mean() < 1 for j in range(cout))
    or_everywhere = Pool(pool.kernel, pool.stride, np.zeros(cout, np.uint8), pool.in_shape).apply(conv_spikes)
    assert not np.array_equal(or_everywhere[:, 1], expected[:, 1])


def test_readout_argmax_and_bias_fold() -> None:
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(5, 12)), rng.normal(size=5)
    c, d = np.array([0.5, 2.0, 1.0, -1.0, 0.3]), rng.normal(size=5)
    blk = fold_bn(FloatBlock(0, "dense", w, b, (12,), bn_scale=c, bn_shift=d))
    assert np.allclose(blk.weight, w * c[:, None]) and np.allclose(blk.bias, c * b + d)
    wq, scale = quantize_weight(blk.weight, 8, per_channel=False)
    (layer,), _ = fold_readout(blk, wq, float(scale[0]))
    assert np.array_equal(layer.threshold, -np.rint(blk.bias / scale[0]).astype(np.int64))
    x = grid(12, 1)
    value = x @ layer.weight.T - layer.threshold
    logits = x @ (wq * scale[0]).T + blk.bias
    # value is the logit in units of s, off by at most half a unit (the rounded bias)
    assert np.max(np.abs(value * scale[0] - logits)) <= 0.5 * scale[0] + 1e-9
    assert np.mean(value.argmax(1) == logits.argmax(1)) > 0.97


# --- torch extraction ----------------------------------------------------------------------------


def tiny_model(method: str = "hoyer") -> nn.Module:
    torch.manual_seed(0)
    act = HoyerSpike("sum") if method == "hoyer" else HeavisideSpike(0.3)
    model = nn.Module()
    model.blocks = nn.ModuleList(
        [
            SpikeBlock(nn.Linear(16, 8, bias=False), None, nn.BatchNorm1d(8), act),
            SpikeBlock(nn.Linear(8, 3)),
        ]
    )
    with torch.no_grad():
        model.blocks[0].bn.weight.copy_(torch.tensor([1.0, -1.0, 0.5, -0.2, 1.0, 2.0, 0.0, 1.0]))
        model.blocks[0].bn.running_mean.normal_()
        if method == "hoyer":
            act.running_threshold.fill_(0.4)
            act.v_th.fill_(-1.5)  # |v_th| is what counts
    return model.eval()


@pytest.mark.parametrize("method", ["hoyer", "heaviside"])
def test_extracted_network_matches_torch_on_grid(method: str) -> None:
    from spikeforge.quant.quantize import quantize_blocks

    model = tiny_model(method)
    blocks = extract_blocks(model, (1, 4, 4), 1)
    assert blocks[0].theta[0] == pytest.approx(0.6 if method == "hoyer" else 0.3)
    res = quantize_blocks(blocks, (1, 4, 4), 3, weight_bits=16, per_channel=True, input_bits=1)
    x = grid(16, 1).astype(np.float64)
    with torch.no_grad():
        spikes = (
            model.blocks[0].act(model.blocks[0].potential(torch.as_tensor(x, dtype=torch.float32))).numpy()
        )
    _, _, outs = res.network.forward(x.reshape(-1, 1, 4, 4), collect=True)
    # 16-bit weights: the integer hidden layer agrees with the float32 torch model nearly everywhere
    assert np.mean(outs[0] == spikes.astype(bool)) > 0.999


def test_refusals_are_one_line_quant_errors() -> None:
    model = tiny_model()
    model.blocks[1].shortcut_from = 0
    with pytest.raises(QuantError, match="block 1: residual shortcut"):
        extract_blocks(model, (1, 4, 4), 8)
    model = tiny_model()
    model.blocks[0].act = nn.ReLU()
    with pytest.raises(QuantError, match="relu nets need conversion"):
        extract_blocks(model, (1, 4, 4), 8)
    model = tiny_model()
    model.blocks[0].act = nn.Sigmoid()
    with pytest.raises(QuantError, match="block 0: activation Sigmoid"):
        extract_blocks(model, (1, 4, 4), 8)
    model = tiny_model()
    model.blocks[0].op = nn.Conv1d(1, 1, 1)
    with pytest.raises(QuantError, match="block 0: op Conv1d"):
        extract_blocks(model, (1, 4, 4), 8)
    with pytest.raises(QuantError, match="Linear expects 16 inputs but receives 9"):
        extract_blocks(tiny_model(), (1, 3, 3), 8)


def test_network_validates_after_fold() -> None:
    from spikeforge.quant.quantize import quantize_blocks

    res = quantize_blocks(extract_blocks(tiny_model(), (1, 4, 4), 8), (1, 4, 4), 3, 8, False, 8)
    assert isinstance(res.network, IntegerNetwork)
    assert [layer.input_bits for layer in res.network.layers] == [8, 1]
    assert res.network.layers[-1].spiking is False
