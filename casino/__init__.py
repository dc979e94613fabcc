"""The reference casino API that Pitboss manages (FastAPI, issue 2).

Entry point: ``casino.app.create_app(settings)``; ``pitboss casino serve`` runs
it under uvicorn. Imports nothing from the control plane.
"""
