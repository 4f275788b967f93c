"""Learned competitors (import torch; the classical :mod:`baselines` do not).

* ``ppmpi`` — PP-MPI plug-and-play ADMM with a learned RDN denoiser (:mod:`baselines.learned.ppmpi`);
  the iteration is the core's :func:`mpirecon.optim.pnp.pnp_admm`, the denoiser model, loading and
  packaged weights the core's :mod:`mpirecon.models.denoiser`, its training :mod:`.denoiser_training`.
* ``admm_net`` — ADMM-Net, unrolled ADMM with learned penalties and CNN priors (:mod:`.admm_net`;
  model in :mod:`.admm_net_model`, training in :mod:`.admm_net_training`).
* ``dip`` — deep image prior: an untrained generator fitted per frame (:mod:`baselines.learned.dip`).
"""
