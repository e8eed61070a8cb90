"""What every results script (seed_claims, reproduce_ar) does at its end: write the JSON and the
Markdown beside the PNG atomically, and turn a bad option into one line and exit status 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spikeforge import SpikeforgeError, atomic_write_text


def write_results(out: Path, stem: str, result: dict[str, Any], markdown: str) -> None:
    """OUT/STEM.json and OUT/STEM.md (the PNG is the caller's), each through a temp file and a rename."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{stem}.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(out / f"{stem}.md", markdown)
    print(f"wrote {out}/{stem}.md/.json/.png in {result['wall_s']:.0f} s")


def run_cli(body: Callable[[], int]) -> int:
    """`body()`, with a SpikeforgeError printed as one line and exit status 2."""
    try:
        return body()
    except SpikeforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
