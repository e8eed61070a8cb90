"""spikeforge.model"""

# The folder is only importable as part of spikeforge; a bare `import model` from the
# repository root would shadow generic names in the user's environment.
if __name__ != "spikeforge.model":
    raise ImportError("import spikeforge.model, not model (install the package: pip install -e .)")
