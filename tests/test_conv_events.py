"""Event-driven convolution (hw/conv_tiling.py): one command per output tile of several positions
and channels, one event per non-zero input of the tile's window, each PE finding its kernel tap.

Checked here: the tiling rule, the memory image by hand, the event path against the per-position
path (the same integers on every layer), the estimator's counts against the driver, and the RTL
(Amaranth simulator; cocotb on Verilator and Icarus) against the golden model bit- and cycle-exact
on random conv commands, with and without stalls, on six array shapes.
"""

from __future__ import annotations

import numpy as np
import pytest
from core_stimulus import stimulus_seed

from spikeforge.hw.config import ConfigError, CoreConfig
from spikeforge.hw.conv_tiling import choose_tiling
from spikeforge.hw.layout import config_for_network, memory_images, plan_layout
from spikeforge.integer_network import Conv, Dense, IntegerNetwork, Pool
from spikeforge.sim import rtl
from spikeforge.sim.cycle import Command, encode_conv_events, run_tile
from spikeforge.sim.driver import NetworkDriver, golden_run, layer_cycles_fast
from spikeforge.sim.rtl import TileCase

# (rows, cols, conv_coord_bits): square, one row, one column, prime by prime, tall, the default array.
SHAPES = [(2, 2, 2), (1, 4, 2), (4, 1, 3), (3, 5, 3), (4, 2, 4), (8, 8, 3)]


def conv_config(rows: int, cols: int, coord: int) -> CoreConfig:
    return CoreConfig(rows=rows, cols=cols, weight_bits=6, acc_bits=16, threshold_bits=16, skip_window=8,
                      max_input_bits=3, max_inputs=100, weight_depth=128, threshold_depth=4 * rows,
                      conv_coord_bits=coord)


def small_net(rng: np.random.Generator, c1: int = 4, c2: int = 6) -> IntegerNetwork:
    """conv 3x3 pad 1 on 3-bit pixels, OR-pool, conv 3x3 stride 2 pad 1 on spikes, readout."""
    conv1 = Conv(rng.integers(-20, 21, (c1, 1, 3, 3)), rng.integers(0, 120, c1), (1, 8, 8), padding=1, input_bits=3)
    pool = Pool(2, 2, np.zeros(c1, np.uint8), (c1, 8, 8))
    conv2 = Conv(rng.integers(-20, 21, (c2, c1, 3, 3)), rng.integers(0, 20, c2), (c1, 4, 4), stride=2, padding=1)
    readout = Dense(rng.integers(-20, 21, (5, c2 * 4)), rng.integers(-5, 6, 5), spiking=False)
    return IntegerNetwork([conv1, pool, conv2, readout], input_shape=(1, 8, 8), input_bits=3)


def lenet_conv(cin: int, cout: int, size: int, kernel: int = 5, padding: int = 0) -> Conv:
    return Conv(np.ones((cout, cin, kernel, kernel), np.int64), np.ones(cout, np.int64), (cin, size, size),
                padding=padding)


def test_tiling_of_the_mnist_lenet_on_8x8() -> None:
    cfg = CoreConfig(conv_coord_bits=8)
    first = choose_tiling(lenet_conv(1, 16, 28, padding=2), cfg)
    second = choose_tiling(lenet_conv(16, 32, 14), cfg)
    # 16 channels: 4 positions per tile; 32 channels: 2. Every PE slot is used.
    assert (first.group, first.tile_w * first.tile_h, first.slots) == (16, 4, 64)
    assert (second.group, second.tile_w * second.tile_h, second.slots) == (32, 2, 64)
    assert first.pitch_shift == 3 and first.words == 1 * 5 * 8 and second.words == 16 * 5 * 8
    assert first.window_h == (first.tile_h - 1) + 5 and first.coord_bits == 3
    assert first.commands == -(-28 // first.tile_h) * -(-28 // first.tile_w)


def test_tiling_refuses_what_it_cannot_run() -> None:
    cfg = CoreConfig(conv_coord_bits=8)
    odd_stride = Conv(np.ones((4, 1, 3, 3), np.int64), np.ones(4, np.int64), (1, 9, 9), stride=3)
    assert choose_tiling(odd_stride, cfg) is None
    assert choose_tiling(lenet_conv(1, 16, 28), CoreConfig(conv_coord_bits=0)) is None
    # 10 channels on 15 PEs: a power-of-two group takes 8, the per-position path all 10.
    assert choose_tiling(lenet_conv(6, 10, 8, kernel=3), CoreConfig(rows=3, cols=5, conv_coord_bits=8)) is None
    with pytest.raises(ConfigError, match="conv_coord_bits"):
        CoreConfig(conv_coord_bits=9)
    with pytest.raises(ConfigError, match="one-time-step"):
        CoreConfig(conv_coord_bits=3, membrane_bits=24, offset_bits=24)


def test_memory_image_of_a_conv_tile_by_hand() -> None:
    rng = np.random.default_rng(3)
    weight = rng.integers(-9, 10, (2, 2, 3, 3))
    conv = Conv(weight, np.array([5, 7]), (2, 6, 6), padding=1)
    net = IntegerNetwork([conv, Dense(np.ones((2, 72), np.int64), np.zeros(2, np.int64), spiking=False)],
                         input_shape=(2, 6, 6))
    cfg = config_for_network(net, 2, 4)
    layout = plan_layout(net, cfg)
    tiling = layout.conv_tiling(0)
    assert tiling is not None and tiling.group == 2 and tiling.pitch_shift == 2
    weights, thresholds = memory_images(net, layout)
    for slot in range(cfg.pes):
        ch = slot % 2
        for ci in range(2):
            for ky in range(3):
                for kx in range(4):
                    want = weight[ch, ci, ky, kx] if kx < 3 else 0  # the pitch's padding words are 0
                    assert weights[slot, ci * 12 + ky * 4 + kx] == want
        assert thresholds[slot % cfg.cols, slot // cfg.cols] == [5, 7][ch]


@pytest.mark.parametrize("rows,cols", [(2, 2), (2, 4), (3, 5), (4, 4), (8, 8)])
def test_event_path_equals_the_per_position_path(rows: int, cols: int) -> None:
    rng = np.random.default_rng(rows * 10 + cols)
    net = small_net(rng)
    x = rng.random((4, 1, 8, 8))
    events = NetworkDriver(net, config_for_network(net, rows, cols))
    per_position = NetworkDriver(net, config_for_network(net, rows, cols, conv_events=False))
    assert per_position.layout.conv_tilings == ()
    for image in x:
        a = events.run_image(image, events.golden_backend)
        b = per_position.run_image(image, per_position.golden_backend)
        for la, lb in zip(a.layers, b.layers, strict=True):
            assert np.array_equal(la.output, lb.output), (rows, cols, la.layer)
    _, _, outputs = net.forward(x, acc_bits=events.cfg.acc_bits, collect=True)
    assert np.array_equal(a.logits, outputs[-1][-1].reshape(-1))


def test_event_path_is_faster_on_8x8() -> None:
    rng = np.random.default_rng(5)
    net = small_net(rng)
    x = rng.random((4, 1, 8, 8))
    fast = layer_cycles_fast(net, config_for_network(net, 8, 8), x).sum(axis=1)
    slow = layer_cycles_fast(net, config_for_network(net, 8, 8, conv_events=False), x).sum(axis=1)
    assert (fast < slow).all(), (fast, slow)


def test_counts_match_the_driver_and_count_synops() -> None:
    from spikeforge.sim.estimate.counts import operation_counts

    rng = np.random.default_rng(11)
    net = small_net(rng)
    cfg = config_for_network(net, 4, 4)
    driver = NetworkDriver(net, cfg)
    x = rng.random((3, 1, 8, 8))
    counts = operation_counts(net, cfg, x)
    for i, image in enumerate(x):
        trace = driver.run_image(image, driver.golden_backend)
        layers = [t for t in trace.layers if t.kind != "pool"]
        assert [t.cycles for t in layers] == list(counts["cycles"][i])
        assert [t.ideal_cycles for t in layers] == list(counts["ideal_cycles"][i])
        assert [t.dense_cycles for t in layers] == list(counts["dense_cycles"][i])
    # Reads and adds of an event conv layer: every (output neuron, non-zero input of its field).
    act = net.quantize_input(x)
    cols = net.layers[0].im2col(act.astype(np.int64))
    assert np.array_equal(counts["weight_reads"][:, 0], (cols != 0).sum(axis=(1, 2)) * net.layers[0].outputs)


def test_one_conv_command_by_hand() -> None:
    """A 1x2 tile of one channel, 2x2 kernel, stride 1: an event at window (0, 1) is tap (0, 1) of
    position 0 and tap (0, 0) of position 1; one at (1, 0) only position 0's (1, 0)."""
    cfg = CoreConfig(rows=1, cols=2, weight_bits=8, acc_bits=16, threshold_bits=16, max_inputs=16,
                     weight_depth=16, threshold_depth=2, conv_coord_bits=2)
    weights = np.zeros((2, 16), np.int64)
    weights[:, :4] = [[1, 2, 30, 40], [1, 2, 30, 40]]  # kernel rows [1 2] [30 40], pitch 2
    thresholds = np.zeros((2, 2), np.int64)
    n, beats = encode_conv_events(cfg, [(0, 1, 0, 1), (0, 3, 1, 0)])
    cmd = Command(n, 1, 0, 0, events=True, conv=True, group_shift=0, width_shift=1, pitch_shift=1,
                  kernel_h=2, kernel_w=2, n_ch=1, n_y=1, n_x=2)
    result = run_tile(cfg, weights, thresholds, cmd, beats)
    assert result.beats[0].values == (1 * 2 + 3 * 30, 1 * 1)


def _random_conv_cases(cfg: CoreConfig, seed: int, count: int, stalls: bool) -> list[TileCase]:
    rng = np.random.default_rng(seed)
    weights, thresholds = rtl.random_memories(cfg, rng)
    commands = [rtl.random_conv_command(cfg, rng, slots=int(rng.choice([0, 1, cfg.pes])), empty=n == 3)
                for n in range(count)]
    case = TileCase(weights, thresholds, commands, stall_seed=seed if stalls else None)
    rtl.pin_thresholds(cfg, case, rng)
    return [case]


@pytest.mark.parametrize("rows,cols,coord", SHAPES, ids=[f"{r}x{c}" for r, c, _ in SHAPES])
def test_rtl_matches_golden_on_random_conv_commands_amaranth(rows: int, cols: int, coord: int) -> None:
    from spikeforge.sim.rtl.amaranth_sim import simulate_commands

    cfg = conv_config(rows, cols, coord)
    seed = stimulus_seed() + rows * 100 + cols
    for stalls in (False, True):
        (case,) = _random_conv_cases(cfg, seed, 12, stalls)
        want = golden_run(cfg, case.weights, case.thresholds, case.commands)
        got = simulate_commands(cfg, case.weights, case.thresholds, case.commands, stall_seed=case.stall_seed)
        for n, (w, g) in enumerate(zip(want, got, strict=True)):
            assert [(b.row, b.values, b.spikes) for b in w.beats] == [(b.row, b.values, b.spikes) for b in g.beats], \
                f"{rows}x{cols} command {n} (seed {seed}, stalls {stalls}): {case.commands[n][0]}"
            if not stalls:
                assert [b.cycle for b in w.beats] == [b.cycle for b in g.beats], f"{rows}x{cols} command {n}"


def test_conv_network_on_the_rtl_amaranth() -> None:
    rng = np.random.default_rng(21)
    net = small_net(rng)
    driver = NetworkDriver(net, config_for_network(net, 4, 4))
    assert len(driver.layout.conv_tilings) == 2
    image = rng.random((1, 8, 8))
    want, got = driver.run_image(image, driver.golden_backend), driver.run_image(image, driver.amaranth_backend)
    for lw, lg in zip(want.layers, got.layers, strict=True):
        assert lw.cycles == lg.cycles and np.array_equal(lw.output, lg.output), lw.layer


def _cocotb_params():
    fast = {(2, 2, 2), (3, 5, 3)}
    for rows, cols, coord in SHAPES:
        marks = [pytest.mark.cocotb] + ([] if (rows, cols, coord) in fast else [pytest.mark.slow])
        yield pytest.param(rows, cols, coord, id=f"{rows}x{cols}", marks=marks)


@pytest.mark.parametrize("rows,cols,coord", list(_cocotb_params()))
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_rtl_matches_golden_on_random_conv_commands_cocotb(sim: str, rows: int, cols: int, coord: int,
                                                           request) -> None:
    request.getfixturevalue(f"{sim}_tool")
    cfg = conv_config(rows, cols, coord)
    seed = stimulus_seed() + 7 + rows * 100 + cols
    cases = _random_conv_cases(cfg, seed, 16, stalls=False) + _random_conv_cases(cfg, seed + 1, 16, stalls=True)
    report = rtl.check_tiles(cfg, cases, sim, seed=seed)
    assert report.ok, f"{sim} {rows}x{cols}: {report.mismatch.message() if report.mismatch else report}"
    assert report.vectors == 32
