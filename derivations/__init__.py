"""SymPy derivations of the mathematical exercises, each with independent checks."""
