"""One root exception; every error names the file and the action."""


class FarensedError(Exception):
    """Root of every error farensed raises on purpose."""


class JobFileError(FarensedError):
    """A job file is unreadable or invalid; carries every problem found."""

    def __init__(self, path, problems):
        self.path = path
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DataError(FarensedError):
    """A dataset line is not valid JSON or not in a known format (names file:line)."""


class StateError(FarensedError):
    """An on-disk state file is missing, corrupt or of an unknown version."""
