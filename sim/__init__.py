"""spikeforge.sim"""

# The folder is only importable as part of spikeforge; a bare `import sim` from the
# repository root would shadow generic names in the user's environment.
if __name__ != "spikeforge.sim":
    raise ImportError("import spikeforge.sim, not sim (install the package: pip install -e .)")
