"""Solvers and priors shared by methods: ADMM, proximal terms, automatic regularisation, plug-and-play ADMM, the classical solvers' parameters."""
