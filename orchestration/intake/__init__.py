"""Submission intake: archive first, then read, map, cast, pseudonymise and load."""

from .landing import LandedFile, landed_files
from .receipts import Receipt
from .receive import receive_file, submission_id_for

__all__ = ["LandedFile", "landed_files", "Receipt", "receive_file", "submission_id_for"]
