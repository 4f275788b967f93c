"""Pictures and exports of reconstructions (PNG, slices + MIP, NIfTI, video)."""
