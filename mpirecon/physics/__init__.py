"""The forward model as an operator: the shared SystemOperator, x-update solvers, linear algebra, the compressed operator, the deepinv bridge."""
