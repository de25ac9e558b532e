"""Each report section runs in isolation: a section whose input is bad becomes a one-line note, and the others
are still written."""
from __future__ import annotations

from typing import Callable


def isolated(render: Callable[[], str], name: str) -> str:
    """Run one section; a failure costs that section a one-line note."""
    try:
        return render()
    except Exception as exc:  # a bad input costs its own section only
        text = " ".join(str(exc).split())[:300]
        return f"_Section {name} could not be built: {type(exc).__name__}: {text}_"
