"""One exception per failure domain. Messages are one line: what is wrong, where, and the fix."""

from __future__ import annotations


class CovermillError(Exception):
    """Base class for every error covermill raises about user input or environment."""


class ParameterError(CovermillError, ValueError):
    """A value given to a public function is out of range or of the wrong kind."""


class AudioError(CovermillError):
    """An audio file cannot be read, is empty, corrupt or unusable."""


class RecipeError(CovermillError):
    """A recipe cannot be found, parsed or validated."""


class BackendUnavailableError(CovermillError):
    """A backend needs something that is not installed; the message names what to install."""


class ModelLoadingError(CovermillError):
    """Model weights are missing, truncated or of the wrong model."""


class OutputError(CovermillError):
    """An output location cannot be used (an existing file, no permission, ...)."""


class AudacityError(CovermillError):
    """Audacity cannot be started or reached, stopped answering, or refused a command (its own message)."""


class StorageError(CovermillError):
    """A storage location (a URL: s3://, sftp://, ...) cannot be reached, read or written: no credentials,
    no such bucket, permission denied, a network error. The message names the location, never its credentials."""
