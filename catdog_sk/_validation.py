"""The one error grammar for parameters, checked before any image is read.

Messages follow scikit-learn's ``_param_validation`` wording:
"The 'backbone' parameter of CatDogClassifier must be one of 'a' or 'b'. Got 'x' instead."
"""

import math
import numbers
from dataclasses import dataclass

from .exceptions import InvalidParameterError

__all__ = ["check_choice", "check_number", "Interval", "Options", "Satisfies", "validate_params"]


def _join(choices):
    items = [repr(c) for c in choices]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


def check_choice(value, choices, *, name, caller):
    """Return ``value`` if it is one of ``choices``, else raise InvalidParameterError.

    Only strings, None, booleans and numbers can match, so an unhashable or
    odd value gets the clear message rather than a TypeError.

    Parameters
    ----------
    value : object
        The value to check.
    choices : sequence
        The allowed values (compared with ``in``).
    name : str
        The parameter's name, quoted in the message.
    caller : str
        The estimator, function or command named in the message.

    Returns
    -------
    value : object
        ``value`` itself.

    Raises
    ------
    InvalidParameterError
        "The 'name' parameter of caller must be one of ... Got ... instead."
    """
    if isinstance(value, str) or value is None or isinstance(value, (bool, numbers.Number)):
        if value in choices:
            return value
    raise InvalidParameterError(
        f"The {name!r} parameter of {caller} must be {'one of ' if len(choices) > 1 else ''}"
        f"{_join(choices)}. Got {value!r} instead."
    )


def check_number(value, *, name, caller, kind=numbers.Integral, low=None, high=None,
                 allow_none=False):
    """Return ``value`` if it is a finite number of ``kind`` within [low, high], else raise.

    NaN and infinities are refused whatever the bounds (``nan < low`` is False, so a plain range
    check would let NaN through to scikit-learn or torch).

    Parameters
    ----------
    value : object
        The value to check (booleans are refused even though they are ints).
    name : str
        The parameter's name, quoted in the message.
    caller : str
        The estimator, function or command named in the message.
    kind : type, default=numbers.Integral
        The required abstract type, e.g. ``numbers.Integral`` or ``numbers.Real``.
    low, high : number, default=None
        Inclusive bounds; None for no bound.
    allow_none : bool, default=False
        Also accept None.

    Returns
    -------
    value : object
        ``value`` itself.

    Raises
    ------
    InvalidParameterError
        "The 'name' parameter of caller must be an int in the range [low, high]. Got ... instead."
    """
    if value is None and allow_none:
        return value
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok and isinstance(value, numbers.Real) and not math.isfinite(value):
        ok = False
    if ok and low is not None and value < low:
        ok = False
    if ok and high is not None and value > high:
        ok = False
    if not ok:
        what = "an int" if kind is numbers.Integral else "a finite number"
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


@dataclass(frozen=True)
class Interval:
    """A finite number of ``kind`` in ``[low, high]`` (either bound may be None), optionally None.

    One entry of an estimator's ``_parameter_constraints``, see :func:`validate_params`.

    Parameters
    ----------
    kind : type
        The required abstract type, e.g. ``numbers.Integral`` or ``numbers.Real``.
    low, high : number, default=None
        Inclusive bounds; None for no bound.
    allow_none : bool, default=False
        Also accept None.
    """

    kind: type
    low: object = None
    high: object = None
    allow_none: bool = False

    def check(self, value, *, name, caller):
        """Check ``value`` against this constraint, with :func:`check_number`.

        Parameters
        ----------
        value : object
            The value to check.
        name : str
            The parameter's name, quoted in the message.
        caller : str
            The estimator, function or command named in the message.

        Returns
        -------
        value : object
            ``value`` itself.

        Raises
        ------
        InvalidParameterError
            The value breaks the constraint.
        """
        return check_number(value, name=name, caller=caller, kind=self.kind, low=self.low, high=self.high,
                            allow_none=self.allow_none)


@dataclass(frozen=True)
class Options:
    """One of ``values`` (compared with ``in``: strings, None, numbers).

    One entry of an estimator's ``_parameter_constraints``, see :func:`validate_params`.

    Parameters
    ----------
    values : tuple
        The allowed values.
    """

    values: tuple

    def check(self, value, *, name, caller):
        """Check ``value`` against this constraint, with :func:`check_choice`.

        Parameters
        ----------
        value : object
            The value to check.
        name : str
            The parameter's name, quoted in the message.
        caller : str
            The estimator, function or command named in the message.

        Returns
        -------
        value : object
            ``value`` itself.

        Raises
        ------
        InvalidParameterError
            The value breaks the constraint.
        """
        return check_choice(value, self.values, name=name, caller=caller)


@dataclass(frozen=True)
class Satisfies:
    """Any value for which ``test(value)`` is true; ``description`` completes "must be ...".

    For constraints neither an interval nor a list of options can say.

    Parameters
    ----------
    test : callable
        ``test(value)`` -> bool; raising TypeError or ValueError counts as False.
    description : str
        What is allowed, e.g. ``"a non-empty list of str"``.
    """

    test: object
    description: str

    def check(self, value, *, name, caller):
        """Check ``value`` against this constraint.

        Parameters
        ----------
        value : object
            The value to check.
        name : str
            The parameter's name, quoted in the message.
        caller : str
            The estimator, function or command named in the message.

        Returns
        -------
        value : object
            ``value`` itself.

        Raises
        ------
        InvalidParameterError
            The value breaks the constraint.
        """
        try:
            ok = bool(self.test(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidParameterError(f"The {name!r} parameter of {caller} must be {self.description}. "
                                        f"Got {value!r} instead.")
        return value


def validate_params(constraints, params, *, caller):
    """Check every parameter against its declared constraint, in the table's order.

    Parameters
    ----------
    constraints : dict of str to Interval, Options or Satisfies
        An estimator's ``_parameter_constraints``: every parameter declared once.
    params : dict of str to object
        ``estimator.get_params(deep=False)``.
    caller : str
        Named in the message ("The 'C' parameter of CatDogClassifier must be ...").

    Raises
    ------
    InvalidParameterError
        On the first parameter that breaks its constraint.
    """
    for name, constraint in constraints.items():
        constraint.check(params[name], name=name, caller=caller)

