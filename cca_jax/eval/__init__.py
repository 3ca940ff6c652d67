"""Evaluation as the papers do it, side by side with classical codecs.

  metrics.py      PSNR (clamped float and 8-bit), MS-SSIM and its dB, per image
  dataset.py      the evaluation images of a folder
  learned.py      a model bundle on real bitstreams: rates, metrics, times, estimate
  classical.py    JPEG, WebP, AVIF, JPEG XL, HEIF/HEVC through imagecodecs / pillow-heif
  curves.py       rate-distortion curves and points (what results files hold)
  results.py      the results file, atomic writes
  bdrate.py       Bjontegaard deltas (PCHIP, cubic, Akima)
  reference.py    published RD points (the paper's, CompressAI's VTM / BPG anchors)
  plots.py        RD plots, visual comparison, information distribution (matplotlib)
  information.py  per-slice share of the y bits (cf. the paper's per-slice code length)
  evaluate.py     ``python -m cca_jax.evaluate``
  report.py       ``python -m cca_jax.report``
"""
