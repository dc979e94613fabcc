"""Pure casino games: outcome functions with no I/O (called by ``casino.api.games``)."""
