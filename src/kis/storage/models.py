"""Tables. Each schema change comes with an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = "0001"


class Base(DeclarativeBase):
    pass


class SessionLease(Base):
    """Who owns the one KIS session: a row per lease name, held until ``expires_at`` unless renewed."""

    __tablename__ = "session_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
