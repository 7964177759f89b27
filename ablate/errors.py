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


class OutputError(AblateError):
    """An output location (--out) that is not a writable folder: checked before any work."""


class DiskFullError(AblateError):
    """The disk under the run directory (or the storage) is full: the study stops, finished runs are kept.

    Not the user's input, but theirs to fix (free space, rerun): exit code 1.
    """

    exit_code = 1


class SystematicFailure(AblateError):
    """Every run of a variant failed the same way: retrying it as is would fail again. Exit code 1."""

    exit_code = 1


class FailedRuns(AblateError):
    """A run finished with failed runs (a seed, a tuning trial, the latency phase): each was printed with its
    error; the study is incomplete until ``--retry-failed`` redoes them. Exit code 1."""

    exit_code = 1
