"""Shim so the seeds' ``uvicorn app.main:app --port 8890`` keeps working from the repo root."""

from kis.gateway.app import create_app

app = create_app()
