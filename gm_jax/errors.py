"""The one exception type for bad input: the CLI prints its message on one line and exits with 2."""


class GMJaxError(ValueError):
    """Bad input (unknown name, wrong shape/dtype/range, missing data or weights).

    The message names the problem and the fix, in one line.
    """


class NumericsWarning(UserWarning):
    """A computation is valid but numerically fragile as configured (e.g. dividing by a tiny coefficient);
    the message names the remedy."""


__all__ = ["GMJaxError", "NumericsWarning"]
