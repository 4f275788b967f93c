"""From raw rows to what a solver sees: frequency selection, transfer-function correction, row weighting, the scanner-consistency check, noise estimates."""
