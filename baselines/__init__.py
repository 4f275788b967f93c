"""Classical MPI reconstruction methods, each registered as a ``mpirecon.reconstructors`` plugin.

* ``pinv``      — truncated-SVD / Tikhonov pseudo-inverse (:mod:`baselines.pinv`)
* ``kaczmarz``  — regularised Kaczmarz / ART (:mod:`baselines.kaczmarz`)
* ``cgnr``      — conjugate gradients on the Tikhonov normal equations (:mod:`baselines.cgnr`)
* ``admm_l1``, ``admm_tv``, ``admm_l1tv`` — ADMM with L1, TV and L1+TV priors (:mod:`baselines.admm`)

Learned competitors (PP-MPI) live in :mod:`baselines.learned`, which imports torch; this package does not.
"""
