"""Networks shared by several methods: the RDN image denoiser (PP-MPI's prior, DERnet's
plug-and-play refinement) and its packaged weights."""
