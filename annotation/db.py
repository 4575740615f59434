"""Database helpers shared by the services."""

import functools
import random
import time

from django.db import OperationalError, connection, transaction

# SQLite allows one writer at a time. With IMMEDIATE transactions and a busy
# timeout (settings.base) a writer normally just waits; when the wait still
# runs out we retry the whole transaction rather than fail the request.
LOCKED_RETRIES = 8


def _is_lock_error(error: OperationalError) -> bool:
    text = str(error).lower()
    return "database is locked" in text or "database table is locked" in text


def atomic_with_retry(func):
    """Run ``func`` in one transaction, retrying it if SQLite reports a lock.

    Must wrap the outermost transaction: a retry inside an enclosing atomic
    block could not roll back what that block already did.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        for attempt in range(LOCKED_RETRIES + 1):
            try:
                with transaction.atomic():
                    return func(*args, **kwargs)
            except OperationalError as error:
                if not _is_lock_error(error) or attempt == LOCKED_RETRIES or connection.in_atomic_block:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (2**attempt))
        raise AssertionError("unreachable")

    return wrapper
