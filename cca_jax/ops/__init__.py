"""Pure functions (no parameters, no Flax modules): what the layers and entropy models
compute, apart from how parameters are held (as tensorflow-compression's ``ops``).

  convolution.py   conv2d / conv_transpose2d / depthwise_conv2d with PyTorch padding,
                   in a 'plain' and a 'cpu' formulation (custom backward passes)
  activations.py   exact GELU, per-pixel LayerNorm over channels, SimpleGate
  initializers.py  PyTorch's default uniform init, the same bits on every machine
  quantization.py  LowerBound, straight-through rounding, the quantisation modes, bits
  padding.py       centred padding to a multiple (the official eval.py's) and its crop
  ms_ssim.py       SSIM / MS-SSIM (pytorch_msssim conventions)
  metrics.py       MSE, PSNR and decibels of float arrays

Imports nothing else of cca_jax.
"""
