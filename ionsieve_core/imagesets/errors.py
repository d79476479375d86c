"""The one error of this package: every problem found, worded for the biologist who uploaded
the files."""

from __future__ import annotations

# Long lists are cut in the one-line summary; `.problems` keeps them all.
SUMMARY_LIMIT = 10


class ImageSetError(Exception):
    """Why a collection of images cannot be read.

    `problems` lists every problem found (each a sentence a biologist understands), so that the
    uploader can fix them all at once instead of one per attempt.
    """

    def __init__(self, problems: str | list[str]) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else [str(p) for p in problems]
        if not self.problems:
            self.problems = ["the images could not be read"]
        super().__init__(self.summary())

    def summary(self) -> str:
        n = len(self.problems)
        shown = "; ".join(self.problems[:SUMMARY_LIMIT])
        more = f" (and {n - SUMMARY_LIMIT} more)" if n > SUMMARY_LIMIT else ""
        return f"{n} problem{'s' if n != 1 else ''}, nothing imported: {shown}{more}"

    def __str__(self) -> str:
        return self.summary()
