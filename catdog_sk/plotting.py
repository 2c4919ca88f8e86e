"""Matplotlib, loaded on first use with a headless backend.

Every plot the project writes (evaluation reports, the monitor page, the comparison of ``fit``) asks
for ``pyplot()`` here, so ``import catdog_sk`` never loads matplotlib and no module reaches into
another's private helper to get it.
"""

__all__ = ["pyplot"]


def pyplot():
    """Return ``matplotlib.pyplot`` with the non-interactive Agg backend selected.

    Returns
    -------
    module
        ``matplotlib.pyplot``. Agg is only selected when pyplot was not imported yet, so a notebook
        (which imported pyplot with its inline backend) keeps drawing inline.
    """
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
