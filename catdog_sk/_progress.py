"""Progress on long work: a tqdm bar on a terminal, a plain line every few seconds in a log.

tqdm redraws one line with carriage returns, which a log file or CI output shows as nothing (or one
endless line) until the end: ``make demo`` printed nothing for 13 minutes of extraction with no terminal.
:func:`progress_bar` gives tqdm on a TTY and :class:`LineProgress` otherwise, both with tqdm's
``update`` / ``close`` / context-manager interface, so callers do not branch.
"""

import sys
import time

__all__ = ["LineProgress", "progress_bar", "LINE_INTERVAL_S"]

#: Seconds between two progress lines when stderr is not a terminal.
LINE_INTERVAL_S = 10.0


class LineProgress:
    """``desc: 1,200/4,160 img (29%), 85.1 img/s, about 35 s left`` on stderr every ``interval`` seconds.

    A run shorter than ``interval`` prints nothing; a longer one ends with a line of the total.

    Parameters
    ----------
    total : int or None
        Units of work (None: unknown, no percentage).
    desc : str
        What is being done.
    unit : str, default='it'
        The unit's name.
    initial : int, default=0
        Units already done (a resumed download).
    interval : float, default=LINE_INTERVAL_S
        Seconds between lines.
    file : file object, default=None
        Where to print; None: ``sys.stderr`` at each print.
    """

    def __init__(self, total, desc, unit="it", *, initial=0, interval=LINE_INTERVAL_S, file=None):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.interval, self.file = interval, file
        self._start = self._last = time.monotonic()
        self._printed = False
        self.postfix = ""

    def update(self, n=1):
        """Count ``n`` more units; print a line when ``interval`` seconds passed since the last one.

        Parameters
        ----------
        n : int, default=1
            Units just done.
        """
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._print(now)

    def set_postfix_str(self, text):
        """What is being worked on now (tqdm's postfix), shown at the end of the next line.

        Parameters
        ----------
        text : str
            E.g. ``'hog / svm'``.
        """
        self.postfix = text

    def _print(self, now, final=False):
        elapsed = max(now - self._start, 1e-9)
        rate = self.n / elapsed
        done = f"{self.n:,}/{self.total:,}" if self.total else f"{self.n:,}"
        line = f"{self.desc}: {done} {self.unit}"
        if self.total:
            line += f" ({self.n / self.total:.0%})"
        line += f", {rate:,.1f} {self.unit}/s"
        if final:
            line += f", done in {elapsed:.0f} s"
        elif self.total and rate > 0:
            line += f", about {(self.total - self.n) / rate:.0f} s left"
        if self.postfix and not final:
            line += f" [{self.postfix}]"
        print(line, file=self.file or sys.stderr, flush=True)
        self._printed = True

    def close(self):
        """End: a line of the total, if any line was printed."""
        if self._printed:
            self._printed = False
            self._print(time.monotonic(), final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress_bar(total, desc, unit="it", *, enabled=True, initial=0, **tqdm_kwargs):
    """A tqdm bar when stderr is a terminal, else :class:`LineProgress`; a silent bar when not ``enabled``.

    Parameters
    ----------
    total : int or None
        Units of work.
    desc : str
        What is being done.
    unit : str, default='it'
        The unit's name.
    enabled : bool, default=True
        False: nothing is shown (``--quiet``).
    initial : int, default=0
        Units already done.
    **tqdm_kwargs
        Passed to tqdm on a terminal (``leave``, ``unit_scale``, ...).

    Returns
    -------
    bar : tqdm.tqdm or LineProgress
    """
    from tqdm.auto import tqdm

    if enabled and not sys.stderr.isatty():
        return LineProgress(total, desc, unit, initial=initial)
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr, disable=not enabled,
                **tqdm_kwargs)
