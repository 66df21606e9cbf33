"""``type: file``: each notice appended as one JSON line (the webhook's body) to a file.

For a log shipper that tails files, a machine with no mail or chat, and the offline demo. One
``write`` per notice on a file opened for appending, so lines from two monitors never mix.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pydantic import Field, field_validator

from monitor.errors import DeliveryError
from monitor.model import Notice
from monitor.receivers import BaseReceiver, ReceiverOptions
from monitor.receivers.webhook import payload


class FileOptions(ReceiverOptions):
    """Keys of a ``type: file`` receiver."""

    path: Path = Field(description="an absolute path: the file each notice is appended to as "
                       "a JSON line (its folder must exist)")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():  # cron and the daemon run from other folders
            raise ValueError("give an absolute path")
        return value


class FileReceiver(BaseReceiver):
    """Appends the webhook's JSON body of each notice, one line each."""

    Options = FileOptions
    options: FileOptions

    def send(self, notice: Notice) -> None:
        line = json.dumps(payload(notice, int(time.time())), ensure_ascii=False) + "\n"
        try:
            handle = os.open(self.options.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(handle, line.encode())
            finally:
                os.close(handle)
        except OSError as error:  # a full disk or a folder not there yet: may pass
            raise DeliveryError(f"cannot write {self.options.path}: {error.strerror}",
                                retryable=True) from None
