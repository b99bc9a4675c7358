"""Media records and their state machine. The database is the ledger, not Celery's result backend."""

from media_service.db.models import MediaRecord, Status
from media_service.db.repo import Claim, Database, MediaRepo
from media_service.db.tenancy import KeyRepo, Quota, UsageRepo, hash_key

__all__ = ["Claim", "Database", "KeyRepo", "MediaRecord", "MediaRepo", "Quota", "Status", "UsageRepo", "hash_key"]
