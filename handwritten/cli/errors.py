"""One kind of failure the CLI reports: one line of what went wrong, one line of what to do."""

from __future__ import annotations


class CliError(Exception):
    """A failure shown to the user as ``error: <message>`` and ``hint: <hint>``."""

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def lines(self) -> list[str]:
        """What is printed on standard error."""
        found = [f"error: {self.message}"]
        if self.hint:
            found.append(f"hint: {self.hint}")
        return found
