"""Compare a notebook's saved text output with a fresh one, allowing CPU rounding in decimals.

Seeded training repeats bit for bit on one machine, but a CPU with other vector units
(AVX2 vs AVX-512) rounds float sums differently, and a few hundred training steps turn
last-bit differences into different models: on an AVX-512 machine chapter 08's pooled
pretraining printed 64.99 +/- 3.44 % where the saved output (AVX2-era machine) has
66.77 +/- 3.04 %. Ignoring such outputs would leave every trained result unchecked, so
``scripts/test`` compares them like this instead:

- the text between numbers must match (runs of spaces and tabs count as one space);
- integers (no decimal point) must match exactly: counts, steps, shapes, ways and shots;
- a decimal followed by ``+/-`` is a mean with its 95% CI: the two means must lie within
  the larger of the two CIs of each other;
- a decimal after ``+/-`` is a CI half-width: within half the larger one, or
  ``CI_QUANTA`` units of its last printed digit (a chance-level 20.00 +/- 0.00 % may
  come out as 20.08 +/- 0.21 %);
- any other decimal: within ``RELATIVE`` of the saved value, or ``ROUNDING_QUANTA`` units
  of its last printed digit (0.841 vs 0.858 passes, 0.80 vs 0.90 fails).

Identical outputs always pass; ``close_enough`` is consulted only when they differ.
"""
from __future__ import annotations

import re

__all__ = ["close_enough", "CI_QUANTA", "ROUNDING_QUANTA", "RELATIVE"]

CI_QUANTA = 25       # units of the last printed digit, for CI half-widths
ROUNDING_QUANTA = 2  # units of the last printed digit, for other decimals
RELATIVE = 0.05      # of the saved value, for other decimals
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_PLUS_MINUS = re.compile(r"\s*(?:\+/-|±)\s*$")
_STARTS_PLUS_MINUS = re.compile(r"^\s*(?:\+/-|±)\s*")


def _split(text: str) -> tuple[list[str], list[str]]:
    """Text pieces (whitespace runs collapsed) and the numbers between them."""
    pieces = _NUMBER.split(text)
    return [re.sub(r"[ \t]+", " ", p) for p in pieces], _NUMBER.findall(text)


def _quantum(token: str) -> float | None:
    """10**-decimals for a plain decimal ("2.39" -> 0.01); None for integers and exponents."""
    mantissa = token.lstrip("+-")
    if "." not in mantissa or "e" in mantissa.lower():
        return None
    return 10.0 ** -len(mantissa.split(".")[1])


def close_enough(saved: str, fresh: str) -> bool:
    """Whether ``fresh`` reproduces ``saved`` within the tolerances in this module's docstring."""
    saved_text, saved_numbers = _split(saved)
    fresh_text, fresh_numbers = _split(fresh)
    if saved_text != fresh_text or len(saved_numbers) != len(fresh_numbers):
        return False
    for i, (s_token, f_token) in enumerate(zip(saved_numbers, fresh_numbers)):
        if s_token == f_token:
            continue
        q_saved, q_fresh = _quantum(s_token), _quantum(f_token)
        if q_saved is None or q_fresh is None:
            if float(s_token) != float(f_token):      # integers exactly; 1e-3 vs 1.0e-3 is fine
                return False
            continue
        s, f = float(s_token), float(f_token)
        quantum = max(q_saved, q_fresh)
        before, after = saved_text[i], saved_text[i + 1]
        if _PLUS_MINUS.search(before):                # a CI half-width
            ok = abs(s - f) <= max(0.5 * max(abs(s), abs(f)), CI_QUANTA * quantum)
        elif _STARTS_PLUS_MINUS.match(after) and i + 1 < len(saved_numbers):   # a mean with its CI
            ci = max(abs(float(saved_numbers[i + 1])), abs(float(fresh_numbers[i + 1])))
            ok = abs(s - f) <= ci + ROUNDING_QUANTA * quantum
        else:
            ok = abs(s - f) <= max(RELATIVE * abs(s), ROUNDING_QUANTA * quantum)
        if not ok:
            return False
    return True
