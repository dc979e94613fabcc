"""How decision messages write numbers and times, shared by the app and the database rules.

Called by ``controller.core.decide`` and ``controller.core.database``. Pure.
"""

from __future__ import annotations

import pandas as pd


def num(x: float) -> str:
    """A number for a message: whole from 100 up, three significant digits below."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def when(at: pd.Timestamp, now: pd.Timestamp) -> str:
    """HH:MM on the same day as ``now``, else with the date."""
    return at.strftime("%H:%M") if at.date() == now.date() else at.strftime("%Y-%m-%d %H:%M")
