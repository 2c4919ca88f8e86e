"""What the tests and the benchmarks share (like ``sklearn.utils._testing``); not public API."""

__all__ = ["PEAK_RSS_CODE"]

#: Python source that defines ``peak_rss_kb()`` in a child process: the child's own peak resident memory.
#: Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the parent's high-water mark across fork and
#: exec into it, so a child of a 4.7 GB pytest process "peaked" at 4.7 GB whatever it did. ``VmHWM`` in
#: /proc/self/status is the high-water mark of the child's own memory map, which exec starts afresh.
PEAK_RSS_CODE = """
def peak_rss_kb():
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    except (OSError, StopIteration):  # not Linux: the best the OS offers
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
