"""spikeforge.scripts"""

# The folder is only importable as part of spikeforge; a bare `import scripts` from the
# repository root would shadow generic names in the user's environment.
if __name__ != "spikeforge.scripts":
    raise ImportError("import spikeforge.scripts, not scripts (install the package: pip install -e .)")
