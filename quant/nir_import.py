"""A float NIR graph -> the float blocks quant/ folds into integer weights and thresholds.

Semantics (docs/INTEROP.md has the tables): one time step from a zero membrane, direct input
coding, NIR's strict comparison `v > v_threshold`, Euler steps of length dt:

    LIF      v = (r dt / tau) I                      (v_leak must be 0)
    IF       v = r I                                 (snnTorch and Norse add the input per step)
    CubaLIF  v = w_in (r dt / tau_mem) I             (only with a trivial synapse: tau_syn = dt)
    Threshold, and LI as a readout: the same with gain 1 and gain r dt / tau

so a neuron after the linear op `u = W x + b` fires iff `u > v_threshold / gain` (gain > 0). A
gain within GAIN_SNAP of 1 is taken as 1 (snnTorch writes tau and r in float32, and its own
importer treats such gains as 1).

Linear nodes between two neurons compose into the one op the core runs: Affine/Linear after
Affine/Linear, a pool after a Conv2d (a larger, strided conv), a pool before a Conv2d without
padding, and a pool (or Flatten) before an Affine. A pool between two neurons is the core's OR
(any spike) or AND (all spikes) pool when its neuron needs exactly 1 or k*k spikes. A graph that
ends in a neuron is read out through that neuron's membrane (its threshold is not used).
Anything else is refused with one line naming the node, its type and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeforge.quant.fold import FloatBlock
from spikeforge.quant.nir_ops import Op, PoolSpec, compose, conv_op, dense_op, num, pool_spec
from spikeforge.quant.nir_read import Graph, NIRError, Node

DEFAULT_DT = 1e-4  # snnTorch's fixed dt; Norse's default is 1e-3 (pass --dt 0.001)
GAIN_SNAP = 1e-6
NEURONS = ("LIF", "IF", "CubaLIF", "Threshold")
STATEFUL = ("LIF", "IF", "CubaLIF", "LI")
LINEAR = ("Affine", "Linear", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Identity")
REFUSED = {
    "NIRGraph": "a subgraph (snnTorch writes recurrent RLeaky/RSynaptic layers this way); the core is "
                "feed-forward: export the model without recurrent connections",
    "Conv1d": "1-D convolution; the core convolves [c, h, w] maps: use Conv2d",
    "Delay": "synaptic delays need state across time steps; the core has none",
    "Scale": "element-wise scaling is not imported by snnTorch or Norse; fold it into the next Affine/Conv2d",
    "CubaLI": "a current-based integrator without spikes; end the graph on an Affine readout or an LIF",
    "I": "an integrator without spikes; end the graph on an Affine readout or an LIF",
}


@dataclass
class ImportOptions:
    """What the graph does not say: steps, Euler dt, input coding and the range pixels map to.

    None takes the graph's metadata (`timesteps`, `dt`, `input_range`, `input_encoding`, as
    spikeforge's export writes them), else the default in the comment.
    """

    timesteps: int | None = None  # 1
    dt: float | None = None  # DEFAULT_DT
    input_range: tuple[float, float] | None = None  # (0, 1): the graph's input = lo + (hi - lo) * pixel
    encoding: str | None = None  # "direct"


@dataclass
class Lowered:
    """Float blocks for quant/quantize.quantize_blocks, plus what the report should say."""

    blocks: list[FloatBlock]
    rate_nodes: list[str]  # per spiking block, the neuron node whose spikes leave the block
    readout: str  # how the class is read out
    dt: float
    notes: list[str] = field(default_factory=list)
    options: ImportOptions | None = None  # as resolved (flags, else the graph's metadata, else defaults)


def parse_range(text: str | None) -> tuple[float, float] | None:
    """--input-range "LO,HI" (None: not given)."""
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise NIRError(f"--input-range {text!r} is not LO,HI; use e.g. --input-range 0,1 or 0,255") from None
    return lo, hi


def resolve_options(graph: Graph, options: ImportOptions) -> ImportOptions:
    """Fill dt from the graph and check every option (one line each)."""
    meta = graph.metadata

    def given(value: Any, key: str, default: Any) -> Any:
        if value is not None:
            return value
        raw = meta.get(key)
        if raw is None:
            return default
        arr = np.asarray(raw)
        if arr.dtype.kind in "OSU":
            return str(arr.ravel()[0] if arr.ndim else arr.item())
        if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)):
            raise NIRError(f"NIR graph metadata {key!r} is not a finite number; pass the value as a flag")
        return arr.ravel().tolist() if arr.size > 1 else arr.ravel()[0].item()

    t = given(options.timesteps, "timesteps", 1)
    if isinstance(t, float) and t.is_integer():
        t = int(t)
    if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 4096:
        raise NIRError(f"--timesteps {t!r} is outside 1..4096")
    dt = given(options.dt, "dt", DEFAULT_DT)
    if not isinstance(dt, int | float) or not np.isfinite(dt) or dt <= 0:
        raise NIRError(f"--dt {dt!r} must be a positive time step in seconds (snnTorch: 1e-4, Norse: 1e-3)")
    rng = given(options.input_range, "input_range", (0.0, 1.0))
    if not isinstance(rng, list | tuple) or len(rng) != 2:
        raise NIRError(f"--input-range {rng!r} must be two numbers LO,HI")
    lo, hi = (float(v) for v in rng)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise NIRError(f"--input-range {lo:g},{hi:g} must be two finite numbers LO < HI (pixels in [0, 1] map to it)")
    encoding = given(options.encoding, "input_encoding", "direct")
    if encoding != "direct":
        raise NIRError(f"--input-encoding {encoding!r}: spike-coded NIR input is not routed to the multi-step "
                       "core yet; use --input-encoding direct")
    return ImportOptions(t, float(dt), (lo, hi), encoding)


# --- graph structure ----------------------------------------------------------------------------


def _refuse_cycles(graph: Graph) -> None:
    """A loop in the edges is a recurrent connection (snnTorch writes RLeaky/RSynaptic that way)."""
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in graph.nodes:
        stack = [(root, iter(succ.get(root, [])))]
        if state.get(root):
            continue
        state[root] = 1
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[name] = 2
                stack.pop()
            elif state.get(child) == 1:
                loop = [n for n, _ in stack][[n for n, _ in stack].index(child):] + [child]
                raise NIRError(f"{graph.nodes[child].where()} is on a recurrent loop ({' -> '.join(loop)}); the core "
                               "is feed-forward: export the model without recurrent connections")
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(succ.get(child, []))))


def chain(graph: Graph) -> list[Node]:
    """The nodes from Input to Output of a sequential graph; branches, merges and cycles refused."""
    for node in graph.nodes.values():
        if node.type == "NIRGraph":
            raise NIRError(f"{node.where()} is {REFUSED['NIRGraph']}")
    ends = {t: [n for n in graph.nodes.values() if n.type == t] for t in ("Input", "Output")}
    for t, found in ends.items():
        if len(found) != 1:
            raise NIRError(f"NIR graph has {len(found)} {t} nodes; spikeforge takes one input and one output")
    _refuse_cycles(graph)
    succ: dict[str, str] = {}
    pred: dict[str, str] = {}
    for a, b in graph.edges:
        if a in succ and succ[a] != b:
            raise NIRError(f"{graph.nodes[a].where()} feeds several nodes; spikeforge takes sequential graphs")
        if b in pred and pred[b] != a:
            raise NIRError(f"{graph.nodes[b].where()} has several inputs (a merge); spikeforge takes sequential "
                           "feed-forward graphs")
        succ[a], pred[b] = b, a
    order, name, seen = [], ends["Input"][0].name, set()
    while True:
        seen.add(name)
        order.append(graph.nodes[name])
        if name not in succ:
            break
        name = succ[name]
    if order[-1].type != "Output":
        raise NIRError(f"{order[-1].where()} leads nowhere: the path from Input does not reach the Output")
    stray = [n for n in graph.nodes.values() if n.name not in seen]
    if stray:
        raise NIRError(f"{stray[0].where()} is not on the path from Input to Output; remove it or connect it")
    return order


# --- neurons ------------------------------------------------------------------------------------


def snap(gain: np.ndarray) -> np.ndarray:
    return np.where(np.abs(gain - 1.0) <= GAIN_SNAP, 1.0, gain)


def coefficients(node: Node, dt: float) -> dict[str, np.ndarray]:
    """Per-neuron {decay, gain, theta, v_reset, leak_in} of one Euler step (module docstring)."""
    t = node.type
    zero = np.zeros(1)
    if t == "Threshold":
        return {"decay": zero, "gain": np.ones(1), "theta": num(node, "threshold"), "v_reset": zero, "leak_in": zero}
    if t == "IF":
        return {"decay": np.ones(1), "gain": num(node, "r"), "theta": num(node, "v_threshold"),
                "v_reset": num(node, "v_reset", 0.0), "leak_in": zero}
    tau = num(node, "tau_mem" if t == "CubaLIF" else "tau")
    if np.any(tau <= 0):
        raise NIRError(f"{node.where()}: a time constant is <= 0; NIR time constants are positive seconds")
    v_leak = num(node, "v_leak", 0.0)
    if np.any(v_leak != 0):
        raise NIRError(f"{node.where()}: v_leak != 0 is not supported (tools disagree on the initial membrane: "
                       "snnTorch refuses it, Norse starts at v_leak); fold the leak voltage into the bias")
    gain = num(node, "r") * dt / tau
    if t == "CubaLIF":
        tau_syn = num(node, "tau_syn")
        alpha = 1.0 - dt / tau_syn if np.all(tau_syn > 0) else np.ones(1)
        if np.any(np.abs(alpha) > GAIN_SNAP):
            raise NIRError(f"{node.where()}: its synaptic current carries state (alpha = 1 - dt/tau_syn = "
                           f"{float(np.max(np.abs(alpha))):.3g} at dt={dt:g}); the core has no synaptic state: "
                           "use a Leaky/LIF neuron, or tau_syn = dt")
        gain = gain * num(node, "w_in", 1.0)
    out = {"decay": 1.0 - dt / tau, "gain": snap(gain), "leak_in": zero}
    if t == "LI":
        return {**out, "theta": np.full(1, np.inf), "v_reset": zero}
    return {**out, "theta": num(node, "v_threshold"), "v_reset": num(node, "v_reset", 0.0)}




# --- lowering -----------------------------------------------------------------------------------


def _input_shape(node: Node, dataset_shape: tuple[int, int, int]) -> tuple[int, ...]:
    shape = tuple(int(v) for v in num(node, "shape").ravel())
    want = int(np.prod(dataset_shape))
    if not shape or min(shape) < 1 or int(np.prod(shape)) != want:
        raise NIRError(f"{node.where()}: shape {list(shape)} does not hold one {list(dataset_shape)} image "
                       f"({want} values); choose the dataset the graph was trained on with --dataset")
    while len(shape) > 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 2 and (1, *shape) == tuple(dataset_shape):
        shape = tuple(dataset_shape)
    if len(shape) == 3 and shape != tuple(dataset_shape):
        raise NIRError(f"{node.where()}: shape {list(shape)} is not the dataset's [c, h, w] = {list(dataset_shape)}")
    return shape


def _per_unit(value: np.ndarray, shape: tuple[int, ...], node: Node, what: str) -> np.ndarray:
    """A neuron parameter as one value per output unit (per channel for a conv map)."""
    value = np.asarray(value, dtype=np.float64)
    if value.size == int(np.prod(shape)):
        full = value.reshape(shape)
    elif len(shape) == 3 and value.size == shape[0]:
        full = np.broadcast_to(value.reshape(-1, 1, 1), shape)
    elif value.size == 1:
        full = np.broadcast_to(value.reshape((1,) * len(shape)), shape)
    else:
        raise NIRError(f"{node.where()}: {what} has {value.size} values but the neuron receives shape {list(shape)}")
    if len(shape) == 3:
        if not np.all(full == full[:, :1, :1]):
            raise NIRError(f"{node.where()}: {what} varies over positions; the core has one value per channel")
        return full[:, 0, 0].copy()
    return full.reshape(-1).copy()


def _first(op: Op, lo: float, hi: float) -> Op:
    """Pixels x in [0, 1] reach the graph as lo + (hi - lo) x: fold that map into the first op."""
    if (lo, hi) == (0.0, 1.0):
        return op
    if op.kind == "conv" and op.padding and lo != 0.0:
        raise NIRError(f"--input-range {lo:g},{hi:g} with a padded first conv {op.names[0]!r}: the padding would "
                       "no longer be the input's zero; use a range starting at 0 or an unpadded conv")
    axes = tuple(range(1, op.weight.ndim))
    return Op(op.kind, op.weight * (hi - lo), op.bias + lo * op.weight.sum(axis=axes), op.in_shape, op.stride,
              op.padding, op.names)


def _pool_block(block: FloatBlock, pool: PoolSpec, theta: np.ndarray, node: Node) -> FloatBlock:
    """A pool between two neurons (its neuron fires on pooled > theta): the core's OR (1 spike of
    k*k) or AND (all k*k), per channel."""
    if block.kind != "conv" or block.pool is not None or not block.spiking:
        raise NIRError(f"{node.where()}: a pool of spikes must follow a spiking Conv2d layer that has no pool yet")
    area = pool.kernel ** 2
    need = np.floor(theta / pool.factor) + 1  # spikes in the window for sum > threshold
    is_and = need == area
    if not np.all((need == 1) | is_and):
        bad = int(need[~((need == 1) | is_and)][0])
        raise NIRError(f"{node.where()} after pool {pool.name!r} fires on {bad} of {area} spikes; the core pools with "
                       f"OR (1 spike) or AND ({area} spikes): set its threshold so that one or all spikes fire it")
    sign = np.where(is_and, -1.0, 1.0)  # AND = min over the window = -max(-u): a negative "BN" scale
    shape = (-1,) + (1,) * (block.weight.ndim - 1)
    return FloatBlock(block.index, "conv", block.weight * sign.reshape(shape), block.bias * sign, block.in_shape,
                      block.stride, block.padding, (pool.kernel, pool.stride), sign, np.zeros_like(sign),
                      block.theta, block.input_bits, strict=True)


def lower(graph: Graph, dataset_shape: tuple[int, int, int], options: ImportOptions,
          input_bits: int = 8) -> Lowered:
    """The float blocks of a one-step graph (module docstring); every refusal is one NIRError line."""
    options = resolve_options(graph, options)
    dt, (lo, hi) = options.dt, options.input_range
    order = chain(graph)
    shape = _input_shape(order[0], dataset_shape)
    blocks: list[FloatBlock] = []
    rates: list[str] = []
    pending: list[Op | PoolSpec] = []
    notes: list[str] = []
    last: tuple[Node, np.ndarray] | None = None
    readout = ""

    def block_from(op: Op, theta: np.ndarray | None) -> FloatBlock:
        if not blocks:
            op = _first(op, lo, hi)
        in_shape = op.in_shape if op.kind == "conv" else (int(np.prod(op.in_shape)),)
        return FloatBlock(len(blocks), op.kind, op.weight, op.bias, in_shape, op.stride, op.padding, theta=theta,
                          input_bits=input_bits if not blocks else 1, strict=True)

    for position, node in enumerate(order[1:-1], start=1):
        t = node.type
        if t in REFUSED:
            raise NIRError(f"{node.where()} is not supported: {REFUSED[t]}")
        if t == "Identity":
            continue
        if t == "Flatten":
            shape = (int(np.prod(shape)),)
        elif t in ("Affine", "Linear", "Conv2d"):
            pending.append(dense_op(node, shape) if t != "Conv2d" else conv_op(node, shape))
            shape = pending[-1].out_shape()
        elif t in ("AvgPool2d", "SumPool2d"):
            pending.append(pool_spec(node, shape))
            shape = pending[-1].out_shape()
        elif t in NEURONS or t == "LI":
            if options.timesteps > 1 and t in STATEFUL:
                raise NIRError(f"--timesteps {options.timesteps}: {node.where()} keeps its membrane across time "
                               "steps; the NIR importer does not route leaky multi-step graphs to the multi-step "
                               "core yet: use --timesteps 1 for a one-step graph")
            coef = coefficients(node, dt)
            merged = compose(pending)
            pending = []
            if merged is None:
                raise NIRError(f"{node.where()} follows another neuron with no Affine/Conv2d between them")
            gain = _per_unit(coef["gain"], shape, node, "its input gain")
            if np.any(gain <= 0):
                raise NIRError(f"{node.where()}: input gain (r dt / tau, w_in) is <= 0 at dt={dt:g}; "
                               "it must be positive")
            if t == "LI":
                if order[position + 1].type != "Output":
                    raise NIRError(f"{node.where()} does not spike; an LI node is only supported as the readout")
                if isinstance(merged, PoolSpec):
                    raise NIRError(f"{node.where()}: the graph ends in a pool; end it on an Affine/Conv2d readout")
                merged.weight = merged.weight * gain.reshape((-1,) + (1,) * (merged.weight.ndim - 1))
                merged.bias = merged.bias * gain
                blocks.append(block_from(merged, None))
                readout = f"membrane of {node.name!r} (LI)"
                break
            theta = _per_unit(coef["theta"], shape, node, "v_threshold") / gain
            if isinstance(merged, PoolSpec):
                if not blocks:
                    raise NIRError(f"{node.where()}: a pool on the input image then a neuron; "
                                   "the core pools spikes only")
                blocks[-1] = _pool_block(blocks[-1], merged, theta, node)
                rates[-1] = node.name
            else:
                blocks.append(block_from(merged, theta))
                rates.append(node.name)
            last = (node, gain)
        else:
            raise NIRError(f"{node.where()} is not supported: spikeforge imports "
                           f"{', '.join(('Input', 'Output', *LINEAR, *NEURONS))} (see docs/INTEROP.md)")
    else:
        merged = compose(pending)
        if isinstance(merged, PoolSpec) or (merged is None and blocks and blocks[-1].pool is not None):
            raise NIRError("NIR graph ends in a pool; end it on an Affine/Conv2d readout or a neuron after one")
        if merged is not None:
            blocks.append(block_from(merged, None))
            readout = f"output of {merged.names[-1]!r} ({graph.nodes[merged.names[-1]].type})"
        elif last is None:
            raise NIRError("NIR graph has no Affine, Linear or Conv2d node; there is nothing to map to the core")
        else:
            node, gain = last
            b = blocks[-1]
            scale = gain.reshape((-1,) + (1,) * (b.weight.ndim - 1))
            blocks[-1] = FloatBlock(b.index, b.kind, b.weight * scale, b.bias * gain, b.in_shape, b.stride,
                                    b.padding, input_bits=b.input_bits)
            rates.pop()
            readout = f"membrane of {node.name!r} ({node.type}); its threshold is not used"
    if options.timesteps > 1:
        notes.append(f"--timesteps {options.timesteps}: the graph keeps no state, so every step is the same; "
                     "mapped as one step")
    if not blocks or blocks[-1].spiking:
        raise NIRError("NIR graph has no readout layer")
    return Lowered(blocks, rates, readout, dt, notes, options)
