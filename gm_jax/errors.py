"""The one exception type for bad input: the CLI prints its message on one line and exits with 2."""


class GMJaxError(ValueError):
    """Bad input (unknown name, wrong shape/dtype/range, missing data or weights).

    The message names the problem and the fix, in one line.
    """
