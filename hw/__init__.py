"""spikeforge.hw"""

# The folder is only importable as part of spikeforge; a bare `import hw` from the
# repository root would shadow generic names in the user's environment.
if __name__ != "spikeforge.hw":
    raise ImportError("import spikeforge.hw, not hw (install the package: pip install -e .)")
