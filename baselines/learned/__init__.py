"""Learned competitors (import torch; the classical :mod:`baselines` do not).

* ``ppmpi`` — PP-MPI plug-and-play ADMM with a learned RDN denoiser (:mod:`baselines.learned.ppmpi`);
  the denoiser model and loading in :mod:`.denoiser`, its training in :mod:`.denoiser_training`,
  the published weights in ``pretrained/``.
* ``dip`` — deep image prior: an untrained generator fitted per frame (:mod:`baselines.learned.dip`).
"""
