"""The root of votescore's exceptions; every error the package raises derives from it."""


class VotescoreError(Exception):
    """Something votescore could not do, said in the user's terms."""


class VoterFileError(VotescoreError):
    """A voter file that cannot be read; names the row and column at fault."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None):
        super().__init__(message)
        self.row = row
        self.column = column


class SnapshotError(VotescoreError):
    """A model snapshot of an unknown version, or one that does not decode."""
