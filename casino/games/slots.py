"""Three-reel slots: the paytable, the reel strips and a pure spin function.

Called by ``casino.api.games`` (one spin per request) and by the statistical
tests. No I/O: the random source is injected and defaults to ``secrets``.

Each reel stops on a symbol with probability weight/60 (weights below, the
same strip on all three reels). Pays are integer multiples of the bet and are
the *total* return (stake included), so a win never needs rounding:

==========================  ===========
combination                 pays x bet
==========================  ===========
SEVEN SEVEN SEVEN           120
BAR BAR BAR                 40
CHERRY CHERRY CHERRY        20
BELL BELL BELL              20
PLUM PLUM PLUM              15
ORANGE ORANGE ORANGE        10
any mix of BAR and SEVEN    10
LEMON LEMON LEMON           8
exactly two CHERRY          5
exactly one CHERRY          1
==========================  ===========

The return to player, computed exactly by enumerating all 60^3 stops, is
20807/21600 = 96.33 % (``RTP``); the hit rate is 37.6 % and the standard
deviation of the return per unit bet is about 3.44 (``rtp_exact`` gives both).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from itertools import product

SYMBOLS: tuple[str, ...] = ("CHERRY", "LEMON", "ORANGE", "PLUM", "BELL", "BAR", "SEVEN")
WEIGHTS: dict[str, int] = {"CHERRY": 8, "LEMON": 12, "ORANGE": 11, "PLUM": 10, "BELL": 8, "BAR": 7, "SEVEN": 4}
STOPS = sum(WEIGHTS.values())  # 60 stops per reel
REELS = 3
THREE_OF_A_KIND: dict[str, int] = {
    "SEVEN": 120,
    "BAR": 40,
    "CHERRY": 20,
    "BELL": 20,
    "PLUM": 15,
    "ORANGE": 10,
    "LEMON": 8,
}
ANY_BAR_PAYS = 10
TWO_CHERRIES_PAYS = 5
ONE_CHERRY_PAYS = 1
_BARS = frozenset({"BAR", "SEVEN"})
# The reel strip: stop index -> symbol, each symbol repeated by its weight.
STRIP: tuple[str, ...] = tuple(symbol for symbol in SYMBOLS for _ in range(WEIGHTS[symbol]))

RandBelow = Callable[[int], int]


@dataclass(frozen=True)
class SpinOutcome:
    """What one spin shows and pays (amounts in minor units)."""

    symbols: tuple[str, str, str]
    multiplier: int
    bet: int
    win: int


def multiplier(symbols: tuple[str, ...]) -> int:
    """How many times the bet the combination returns (0 when it loses)."""
    if len(symbols) != REELS:
        raise ValueError(f"symbols: expected {REELS} symbols, got {len(symbols)}")
    first = symbols[0]
    if all(s == first for s in symbols):
        return THREE_OF_A_KIND[first]
    if all(s in _BARS for s in symbols):
        return ANY_BAR_PAYS
    cherries = sum(1 for s in symbols if s == "CHERRY")
    if cherries == 2:
        return TWO_CHERRIES_PAYS
    if cherries == 1:
        return ONE_CHERRY_PAYS
    return 0


def spin(bet: int, randbelow: RandBelow = secrets.randbelow) -> SpinOutcome:
    """Spin the three reels for ``bet`` minor units; pure given ``randbelow``."""
    if isinstance(bet, bool) or not isinstance(bet, int) or bet <= 0:
        raise ValueError(f"bet: expected a positive integer number of minor units, got {bet!r}")
    symbols = (STRIP[randbelow(STOPS)], STRIP[randbelow(STOPS)], STRIP[randbelow(STOPS)])
    mult = multiplier(symbols)
    return SpinOutcome(symbols=symbols, multiplier=mult, bet=bet, win=bet * mult)


@dataclass(frozen=True)
class PaytableStats:
    """Exact moments of the return per unit bet."""

    rtp: Fraction
    variance: Fraction
    hit_rate: Fraction


def rtp_exact() -> PaytableStats:
    """Enumerate every stop combination with its probability: exact RTP, variance, hit rate."""
    total = Fraction(0)
    second = Fraction(0)
    hits = Fraction(0)
    denominator = STOPS**REELS
    for combo in product(SYMBOLS, repeat=REELS):
        p = Fraction(WEIGHTS[combo[0]] * WEIGHTS[combo[1]] * WEIGHTS[combo[2]], denominator)
        m = multiplier(combo)
        total += p * m
        second += p * m * m
        if m:
            hits += p
    return PaytableStats(rtp=total, variance=second - total * total, hit_rate=hits)


RTP = Fraction(20807, 21600)
