"""spikeforge: co-design ultra-low-latency SNNs and the accumulate-only hardware that runs them."""

__version__ = "0.1.0"


class SpikeforgeError(Exception):
    """Bad input from the user: a one-line message that names the field and the fix.

    The command line prints it as one line and exits non-zero, never with a traceback.
    Every subpackage's error classes (ConfigError, ArtifactError, DataError, ...) derive from it.
    """
