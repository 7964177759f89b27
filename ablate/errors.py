"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class AblateError(Exception):
    """A problem with the user's input (data, study file, options), not a bug.

    The message is one line that names the problem and the fix.
    """

    exit_code = 2


class DataError(AblateError):
    """Missing, malformed or corrupt dataset."""


class StudyError(AblateError):
    """Malformed study file or unknown study setting."""


class ConfigError(AblateError):
    """Unknown decoder, bad option value, bad checkpoint."""
