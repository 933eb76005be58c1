"""Decimal amounts: strict parsing from JSON, and decimal strings on the way out.

Floats never become money: a JSON number that arrives as a float is refused, because the
float has already lost digits by the time we see it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# Bounds that keep a hostile "1e400" or a 10,000-digit string out of the arithmetic.
MAX_INTEGER_DIGITS = 30
MAX_FRACTION_DIGITS = 36
MAX_STRING_LENGTH = 80

ZERO = Decimal(0)
HUNDRED = Decimal(100)


def parse_decimal(value: Any) -> Decimal:
    """A finite Decimal within bounds, from a decimal string, an int or a Decimal."""
    if isinstance(value, (bool, float)):
        raise ValueError('must be a decimal string such as "1.25", not a JSON number with a fraction')
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        # Decimal() also takes other scripts' digits and "1_000": only plain ASCII notation is money here.
        if not text or len(text) > MAX_STRING_LENGTH or not text.isascii() or "_" in text:
            raise ValueError('must be a decimal string such as "1.25"')
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{text[:40]!r} is not a decimal number") from None
    elif not isinstance(value, Decimal):
        raise ValueError('must be a decimal string such as "1.25"')
    number: Decimal = value
    if not number.is_finite():
        raise ValueError("must be a finite number")
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    integer_digits = len(digits) + exponent
    fraction_digits = max(0, -exponent)
    if integer_digits > MAX_INTEGER_DIGITS:
        raise ValueError(f"is too large (more than {MAX_INTEGER_DIGITS} integer digits)")
    if fraction_digits > MAX_FRACTION_DIGITS:
        raise ValueError(f"has more than {MAX_FRACTION_DIGITS} decimal places")
    return number


def to_decimal_string(value: Decimal) -> str:
    """Plain notation, never an exponent: Decimal('1E+3') -> '1000'."""
    if not value:  # 0, -0, 0.00: the most common figure of all
        return "0"
    text = str(value)  # plain unless the exponent calls for "E" notation, and faster than format()
    if "E" in text:
        text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_DECIMAL_SCHEMA = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["1.25"]}

# A Decimal the caller sends: parsed strictly, within bounds, written to JSON as a decimal string.
DecimalStr = Annotated[
    Decimal,
    BeforeValidator(parse_decimal),
    PlainSerializer(to_decimal_string, return_type=str, when_used="json"),
    WithJsonSchema(_DECIMAL_SCHEMA),
]

# A Decimal the service computed or stored (a value, a price from the coins API): written to JSON
# as a decimal string, and never refused for its size, since totals may outgrow any input bound.
DecimalValue = Annotated[
    Decimal,
    PlainSerializer(to_decimal_string, return_type=str, when_used="json"),
    WithJsonSchema(_DECIMAL_SCHEMA),
]
