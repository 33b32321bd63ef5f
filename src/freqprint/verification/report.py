"""What every verdict's report shares: plain data without the wall time (the first piece of one
report type per verdict)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

__all__ = ["TimedReport"]


class TimedReport:
    """A base for a verdict's dataclass report that has a ``seconds`` field (the wall time)."""

    def to_dict(self, include_timing: bool = False) -> dict[str, Any]:
        """The report as plain data.  Without ``include_timing`` it is a pure function of the
        inputs: the same inputs give byte-identical JSON on any run and thread count."""
        d = asdict(cast(Any, self))
        if not include_timing:
            d.pop("seconds")
        return d
