"""splitsafe's interpretation and report rendering (HTML helpers, audit and training reports).

Kept import-free: each module imports what it needs, heavy packages inside functions.
"""
