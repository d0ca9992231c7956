"""The record of one verification, shared by every derivation's ``check()``."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One verified claim: what, how, against what, and by how much it is off.

    ``error`` is the maximum absolute (or stated relative) deviation observed and
    ``tolerance`` the bound it must stay under; a symbolic check uses 0 and 0.  ``name_tex`` and
    ``method_tex`` are the same in LaTeX for the report's appendix (plain text stays for ``--verify``);
    empty means the plain text is printed, escaped.
    """

    name: str  # e.g. "dz/da at (2, 3)"
    method: str  # e.g. "reverse-mode engine vs torch.autograd (float64)"
    error: float
    tolerance: float
    name_tex: str = ""
    method_tex: str = ""

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance
