"""``python -m kis.storage.init_db``: create or upgrade the schema (SQLite ``kis_trading.db`` by default)."""

from __future__ import annotations

import sys

from kis.config import Settings
from kis.logs import mask_text
from kis.storage.migrate import upgrade


def main() -> int:
    settings = Settings()
    try:
        upgrade(settings.kis_db_url)
    except Exception as err:  # an operator command: say what failed, not a traceback
        # The first line names the problem; SQLAlchemy appends the whole statement after it.
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        print(f"Database initialization failed: {mask_text(reason)}", file=sys.stderr)
        return 1
    print("Database initialized successfully")
    return 0


if __name__ == "__main__":
    sys.exit(main())
