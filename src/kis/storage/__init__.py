"""Persistence: SQLAlchemy 2 models, Alembic migrations, engines for SQLite (default) and PostgreSQL."""
