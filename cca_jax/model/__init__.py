"""The paper's model and its math (arXiv 2410.04847; official models/vae.py,
models/aux_em.py, train.py).

  layers.py            Conv2d, ConvTranspose2d, DepthwiseConv2d, LayerNorm2d, NAFBlock,
                       ResidualBottleneckBlock, NAFStack (Flax modules over cca_jax.ops)
  transforms.py        g_a, g_s, h_a, h_mean_s / h_scale_s
  entropy/             the entropy models: factorized bottleneck, Gaussian conditional,
                       uneven slices, the channel context, the auxiliary model of the
                       CCA loss, coding tables, integer entropy parameters
  cca.py               CCAModel: training and evaluation forward, init_params
  losses.py            the rate-distortion objective with the CCA terms
  inference.py         the evaluation forward on one image (estimated bpp, PSNR)
  parameter_counts.py  parameter counts per module
  torch_checkpoint.py  official PyTorch checkpoints: names, layouts, conversion

Imports cca_jax.ops and cca_jax.config only.
"""
