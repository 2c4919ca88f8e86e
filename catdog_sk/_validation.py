"""The one error grammar for parameters, checked before any image is read.

Messages follow scikit-learn's ``_param_validation`` wording:
"The 'backbone' parameter of CatDogClassifier must be one of 'a' or 'b'. Got 'x' instead."
"""

import numbers

from .exceptions import InvalidParameterError


def _join(choices):
    items = [repr(c) for c in choices]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


def check_choice(value, choices, *, name, caller):
    """Return ``value`` if it is one of ``choices``, else raise InvalidParameterError."""
    if isinstance(value, str) or value is None or isinstance(value, (bool, numbers.Number)):
        if value in choices:
            return value
    raise InvalidParameterError(
        f"The {name!r} parameter of {caller} must be {'one of ' if len(choices) > 1 else ''}"
        f"{_join(choices)}. Got {value!r} instead."
    )


def check_number(value, *, name, caller, kind=numbers.Integral, low=None, high=None,
                 allow_none=False):
    """Return ``value`` if it is a number of ``kind`` within [low, high], else raise."""
    if value is None and allow_none:
        return value
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok and low is not None and value < low:
        ok = False
    if ok and high is not None and value > high:
        ok = False
    if not ok:
        what = "an int" if kind is numbers.Integral else "a number"
        if low is not None and high is not None:
            what += f" in the range [{low}, {high}]"
        elif low is not None:
            what += f" >= {low}"
        elif high is not None:
            what += f" <= {high}"
        if allow_none:
            what += " or None"
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be {what}. Got {value!r} instead."
        )
    return value
