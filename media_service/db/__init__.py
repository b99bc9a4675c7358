"""Media records and their state machine. The database is the ledger, not Celery's result backend."""

from media_service.db.models import MediaRecord, Status
from media_service.db.repo import Claim, Database, MediaRepo

__all__ = ["Claim", "Database", "MediaRecord", "MediaRepo", "Status"]
