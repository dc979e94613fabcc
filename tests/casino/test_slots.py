"""The pure slots game: exact paytable RTP, and the production RNG measured against it."""

from __future__ import annotations

import math
import random
from collections import Counter
from fractions import Fraction

import pytest

from casino.games import slots


def test_the_documented_rtp_is_the_exact_rtp_of_the_paytable() -> None:
    stats = slots.rtp_exact()
    assert stats.rtp == slots.RTP == Fraction(20807, 21600)
    assert 0.955 <= float(stats.rtp) <= 0.97  # "about 96 %"
    assert math.isclose(math.sqrt(stats.variance), 3.4394, abs_tol=1e-3)
    assert math.isclose(float(stats.hit_rate), 0.37636, abs_tol=1e-4)
    assert "96.33 %" in (slots.__doc__ or "")


@pytest.mark.parametrize(
    ("symbols", "pays"),
    [
        (("SEVEN", "SEVEN", "SEVEN"), 120),
        (("BAR", "BAR", "BAR"), 40),
        (("CHERRY", "CHERRY", "CHERRY"), 20),
        (("LEMON", "LEMON", "LEMON"), 8),
        (("BAR", "SEVEN", "BAR"), 10),
        (("CHERRY", "PLUM", "CHERRY"), 5),
        (("PLUM", "CHERRY", "BELL"), 1),
        (("PLUM", "LEMON", "BELL"), 0),
        (("SEVEN", "SEVEN", "CHERRY"), 1),
    ],
)
def test_paytable(symbols: tuple[str, str, str], pays: int) -> None:
    assert slots.multiplier(symbols) == pays


def test_spin_with_a_scripted_rng_is_deterministic() -> None:
    stops = iter([slots.STRIP.index("SEVEN")] * 3)
    outcome = slots.spin(25, lambda n: next(stops))
    assert outcome.symbols == ("SEVEN", "SEVEN", "SEVEN") and outcome.win == 25 * 120


@pytest.mark.parametrize("bet", [0, -1, 1.5, True, "10", None])
def test_bad_bets_are_refused_naming_the_field(bet: object) -> None:
    with pytest.raises(ValueError, match=r"^bet:"):
        slots.spin(bet)  # type: ignore[arg-type]


@pytest.mark.slow
def test_measured_rtp_of_the_secrets_rng_is_within_four_sigma() -> None:
    """300k spins with the production RNG; tolerance 4 standard errors from the paytable's exact variance."""
    n = 300_000
    total = sum(slots.spin(1).win for _ in range(n))
    stats = slots.rtp_exact()
    tolerance = 4 * math.sqrt(float(stats.variance) / n)  # ~0.025
    assert abs(total / n - float(stats.rtp)) < tolerance, (total / n, float(stats.rtp), tolerance)


def test_reel_stops_follow_the_weights_chi_square() -> None:
    """Symbol frequencies per reel against the strip weights (chi-square, 6 dof, p > 0.0001)."""
    n = 60_000
    counts = [Counter[str]() for _ in range(3)]
    for _ in range(n // 3):
        for index, symbol in enumerate(slots.spin(1).symbols):
            counts[index][symbol] += 1
    critical = 27.86  # chi-square 6 dof at p = 0.0001
    for reel in counts:
        draws = sum(reel.values())
        chi2 = sum(
            (reel[s] - draws * w / slots.STOPS) ** 2 / (draws * w / slots.STOPS) for s, w in slots.WEIGHTS.items()
        )
        assert chi2 < critical, (reel, chi2)


def test_a_biased_rng_is_caught_by_the_rtp_check() -> None:
    """The statistical check can fail: an RNG that never stops on SEVEN drifts far below the RTP."""
    rng = random.Random(1)
    no_sevens = slots.STRIP.index("SEVEN")
    total = sum(slots.spin(1, lambda k: rng.randrange(no_sevens)).win for _ in range(50_000))
    stats = slots.rtp_exact()
    assert abs(total / 50_000 - float(stats.rtp)) > 4 * math.sqrt(float(stats.variance) / 50_000)
