"""Published FPGA SNN accelerators on MNIST-class tasks: the anchors reports compare against.

Figures are as the authors report them (abstracts of the cited papers); energy per image is
power x latency where the paper gives both (marked "derived"). None of these ran spikeforge's
dataset or platform: the reports say so beside every comparison.
"""

from __future__ import annotations

ANCHORS: list[dict] = [
    {
        "name": "Flexi-NeurA",
        "source": "Farahani, Roshanshah, Safari, arXiv:2602.18140 (2026)",
        "dataset": "MNIST (full, 10k test)",
        "network": "256-128-10 FC, LIF, 2 cores",
        "platform": "FPGA (logic cells)",
        "accuracy": 97.23,
        "lut": 1623,
        "lut_kind": "LC",
        "ff": None,
        "bram": 7,
        "dsp": None,
        "fmax_mhz": None,
        "latency_us": 1100.0,
        "power_mw": 111.0,
        "energy_uj": 111.0 * 1100.0 / 1000.0,  # derived: 111 mW x 1.1 ms
    },
    {
        "name": "Spiker+",
        "source": "Carpegna, Savino, Di Carlo, IEEE TETC 2024, arXiv:2401.01141",
        "dataset": "MNIST (full, 10k test)",
        "network": "784-128-10 FC, LIF",
        "platform": "Xilinx Artix-7",
        "accuracy": 93.85,
        "lut": 7612,
        "lut_kind": "LUT",
        "ff": None,
        "bram": 18,
        "dsp": None,
        "fmax_mhz": None,
        "latency_us": 780.0,
        "power_mw": 180.0,
        "energy_uj": 180.0 * 780.0 / 1000.0,  # derived: 180 mW x 780 us
    },
    {
        "name": "Fan & Levy (snn-fpga)",
        "source": "Fan, Levy, arXiv:2507.07284 (2025)",
        "dataset": "MNIST",
        "network": "FC, IF, 16x16 synaptic tiles",
        "platform": "Xilinx Artix-7 @ 100 MHz",
        "accuracy": None,
        "lut": 6358,
        "lut_kind": "LUT",
        "ff": None,
        "bram": 40.5,
        "dsp": None,
        "fmax_mhz": 100.0,
        "latency_us": 520.0,
        "power_mw": None,
        "energy_uj": 198.0,  # reported 0.198 mJ per image
    },
    {
        "name": "Windhager et al. (reports >99 %)",
        "source": "Windhager, Ratschbacher, Moser, Lunglmayr, arXiv:2505.11252 (2025)",
        "dataset": "MNIST",
        "network": "FC, LIF",
        "platform": "Xilinx UltraScale+",
        "accuracy": 99.0,
        "lut": None,
        "lut_kind": "LUT",
        "ff": None,
        "bram": None,
        "dsp": None,
        "fmax_mhz": None,
        "latency_us": 290.0,
        "power_mw": None,
        "energy_uj": None,
    },
]


def fmt(value, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "n/r"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}{suffix}"
    return f"{value:,.0f}{suffix}" if isinstance(value, float) else f"{value:,}{suffix}"


def anchor_rows_markdown() -> list[str]:
    """Markdown table rows (no header) for the anchors; n/r = not reported."""
    rows = []
    for a in ANCHORS:
        rows.append(
            f"| {a['name']} | {a['dataset']}; {a['platform']} | {fmt(a['accuracy'], 2, ' %')} | "
            f"{fmt(a['lut'])} {a['lut_kind'] if a['lut'] else ''} | {fmt(a['ff'])} | {fmt(a['bram'], 1)} | "
            f"{fmt(a['dsp'])} | {fmt(a['fmax_mhz'])} | {fmt(a['latency_us'], 1)} | "
            f"{fmt(1e6 / a['latency_us'] if a['latency_us'] else None)} | {fmt(a['energy_uj'], 1)} | {a['source']} |"
        )
    return rows


TABLE_HEADER = [
    "| design | dataset; platform | accuracy | LUT/LC | FF | BRAM/EBR | DSP | Fmax (MHz) | latency (µs) | "
    "images/s | energy (µJ/image) | source |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]
