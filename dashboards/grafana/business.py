"""Dashboard 4, Casino business: bets, money wagered and won, RTP, wallet movements, sessions, tournaments.

From the reference casino's own metrics (casino/metrics.py), per selected
service. Amounts are in the currency's minor units (cents). RTP observed is
won / wagered over an hour; theoretical is each game's paytable RTP, so a
gap that persists is a bug or a fraud, not luck. Built by
``dashboards.grafana.build``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from dashboards.grafana.common import SVC, Q, dashboard, dashed, finish, namespace_var, row, service_var, stat_panel, ts

UID = "pitboss-business"
BETS = f"casino_bet_amount_minor_total{{{SVC}}}"
WINS = f"casino_win_amount_minor_total{{{SVC}}}"


def build() -> dm.Dashboard:
    board = (dashboard(UID, "How much is being played, won and moved in and out of wallets, by how many players,"
                            " and does the games' return match their paytables?")
             .with_variable(namespace_var()).with_variable(service_var()))

    board = board.with_row(row("Play"))
    board = board.with_panel(stat_panel(
        "Bets per second", "How busy are the games right now?", "suffix: bets/s",
        [Q(f"sum(rate(casino_bets_total{{{SVC}}}[$__rate_interval]))", "bets/s")], w=6, h=5))
    board = board.with_panel(stat_panel(
        "Wagered in range", "How much was bet over the dashboard's time range (minor units)?", "short",
        [Q(f"sum(increase({BETS}[$__range]))", "wagered")], w=6, h=5))
    board = board.with_panel(stat_panel(
        "Won in range", "How much did players win back over the range (minor units)?", "short",
        [Q(f"sum(increase({WINS}[$__range]))", "won")], w=6, h=5))
    board = board.with_panel(stat_panel(
        "RTP observed in range", "What share of the money wagered did players win back over the range?",
        "percentunit", [Q(f"sum(increase({WINS}[$__range])) / sum(increase({BETS}[$__range]))", "RTP")], w=6, h=5,
        decimals=2))
    board = board.with_panel(ts(
        "Bets per second by game", "How does play move through the day and around events?", "suffix: bets/s",
        "bets/s", [Q(f"sum by (game) (rate(casino_bets_total{{{SVC}}}[$__rate_interval]))", "{{game}}")], w=12, h=8,
        links=["pitboss-capacity"]))
    board = board.with_panel(ts(
        "Wagered and won", "How much money flows through the games per second (minor units/s)?",
        "suffix: /s", "minor units/s",
        [Q(f"sum(rate({BETS}[$__rate_interval]))", "wagered"), Q(f"sum(rate({WINS}[$__rate_interval]))", "won")],
        w=12, h=8))
    rtp = ts(
        "RTP observed (1h) and theoretical",
        "Does each game pay back what its paytable says (observed over the last hour vs the exact RTP)?",
        "percentunit", "return to player",
        [Q(f"sum by (game) (rate(casino_win_amount_minor_total{{{SVC}}}[1h]))"
           f" / sum by (game) (rate(casino_bet_amount_minor_total{{{SVC}}}[1h]))", "{{game}} observed"),
         Q(f"max by (game) (casino_game_rtp_theoretical_ratio{{{SVC}}})", "{{game}} theoretical")],
        w=24, h=8, min_zero=False)
    board = board.with_panel(dashed(rtp, "slots theoretical"))

    board = board.with_row(row("Wallets, players and tournaments"))
    board = board.with_panel(ts(
        "Deposits and withdrawals (amounts)", "How much money comes in and goes out (minor units/s)?",
        "suffix: /s", "minor units/s",
        [Q(f"sum by (type) (rate(casino_wallet_amount_minor_total{{{SVC}}}[$__rate_interval]))", "{{type}}")],
        w=8, h=8))
    board = board.with_panel(ts(
        "Wallet movements by outcome", "How many deposits, withdrawals and bets succeed or are refused?",
        "ops", "movements/s",
        [Q(f"sum by (type, outcome) (rate(casino_wallet_transactions_total{{{SVC}}}[$__rate_interval]))",
           "{{type}} {{outcome}}")], w=8, h=8, stack=True))
    board = board.with_panel(ts(
        "Active sessions", "How many players are on (session tokens seen in the last 5 minutes, summed over"
        " replicas)?", "short", "sessions",
        [Q(f"sum(casino_active_sessions{{{SVC}}})", "sessions")], w=8, h=8))
    board = board.with_panel(ts(
        "Tournament entrants per hour", "How many players enter tournaments, and when?", "suffix: /h",
        "entrants/h", [Q(f"sum(rate(casino_tournament_entries_total{{{SVC}}}[$__rate_interval])) * 3600", "entrants")],
        w=16, h=6))
    board = board.with_panel(stat_panel(
        "Tournament entrants in range", "How many tournament entries over the dashboard's time range?", "short",
        [Q(f"sum(increase(casino_tournament_entries_total{{{SVC}}}[$__range]))", "entrants")], w=8, h=6))
    return finish(board)
