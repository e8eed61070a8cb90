"""spikeforge.quant"""

# The folder is only importable as part of spikeforge; a bare `import quant` from the
# repository root would shadow generic names in the user's environment.
if __name__ != "spikeforge.quant":
    raise ImportError("import spikeforge.quant, not quant (install the package: pip install -e .)")
