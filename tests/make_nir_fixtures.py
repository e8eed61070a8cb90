"""Write tests/data/snntorch_digits.nir: the snnTorch-trained digits network the fast NIR tests use.

    .venv/bin/python tests/make_nir_fixtures.py

One time step, Linear(64, 64) -> Leaky -> Linear(64, 10) -> Leaky, per-neuron learned beta and
threshold (tests/nir_models.py, seed 0, 30 epochs), exported by snnTorch's own export_to_nir with
ignore_dims=[0] and written with nir.write. tests/test_nir_flow.py (slow) trains the same model
fresh over several seeds instead of using this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    import nir

    sys.path.insert(0, str(HERE))
    from nir_models import export_snntorch, train_snntorch_digits

    model = train_snntorch_digits(seed=0, hidden=64, epochs=30)
    out = HERE / "data" / "snntorch_digits.nir"
    out.parent.mkdir(exist_ok=True)
    nir.write(out, export_snntorch(model.net))
    print(f"{out.name}: snnTorch float accuracy {100 * model.float_accuracy:.2f} % on the digits test set")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
