"""HTTP routers of the casino API, one module per resource (mounted by ``casino.app``)."""
