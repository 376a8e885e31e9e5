"""The registry's domain: groups, clusters and builds as pure ``decide``/``apply`` functions.

No I/O here: commands go in, events come out; events fold into state.
"""
