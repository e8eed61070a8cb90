"""`python -m spikeforge`: the same command line as the `spikeforge` script."""

import sys

from spikeforge.scripts.cli import main

sys.exit(main())
