"""Observability: console progress lines and TensorBoard summaries (process 0 only).

Console, every ``log_every`` steps::

    step 120/2000 (6%)  1.93 steps/s  15.4 img/s  ETA 16m14s | loss 1.234 psnr 22.10
    bpp 0.812 (y 0.751 z 0.061) cca -0.013 aux2 0.402 q 11.3 | slices 0.02 0.09 ...

TensorBoard event files go to ``WORKDIR/tensorboard`` (``train/<name>`` and
``eval/<name>`` tags) when TensorFlow is importable (it is only used on the host).
"""

from __future__ import annotations

import sys
import time

import jax
import numpy as np


def _format_duration(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def format_train_line(step: int, num_steps: int, steps_per_s: float,
                      images_per_s: float, m: dict) -> str:
  eta = (num_steps - step) / steps_per_s if steps_per_s > 0 else float("nan")
  quality = (f"ms-ssim {m['ms_ssim']:.4f}" if "ms_ssim" in m
             else f"psnr {m['psnr']:.2f}")
  line = (f"step {step}/{num_steps} ({100 * step / max(num_steps, 1):.0f}%)  "
          f"{steps_per_s:.2f} steps/s  {images_per_s:.1f} img/s  "
          f"ETA {_format_duration(eta) if eta == eta else '?'} | "
          f"loss {m['loss']:.4f} mse {m['mse']:.5f} {quality} "
          f"bpp {m['bpp']:.4f} (y {m['bpp_y']:.4f} z {m['bpp_z']:.4f})")
  if "cca" in m:
    line += f" cca {m['cca']:.4f} aux2 {m['aux2']:.4f}"
    if "cca_bits_per_element" in m:  # 29.9 = the 1e-9 floor: aux model saturated
      line += f" R_cca/elt {m['cca_bits_per_element']:.2f}"
  line += (f" q {m['quantile_loss']:.3g} lmbda {m['lmbda']:.3g} "
           f"lr {m['learning_rate']:.1e} | slices "
           + " ".join(f"{v:.3f}" for v in np.ravel(m["slice_bpp"])))
  return line


def format_eval_line(step: int, m: dict) -> str:
  parts = [f"{k} {m[k]:.4f}" for k in ("loss", "psnr", "ms_ssim", "bpp", "bpp_y",
                                       "bpp_z", "cca") if k in m]
  return f"eval @ step {step} ({m['num_images']} images): " + " ".join(parts)


class MetricWriter:
  """Console and TensorBoard writer; a no-op on processes other than 0."""

  def __init__(self, logdir: str | None, enabled: bool | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._tb = None
    if self.enabled and logdir:
      self._tb = _tensorboard_writer(logdir)

  def print(self, text: str) -> None:
    if self.enabled:
      print(text, flush=True)

  def scalars(self, step: int, prefix: str, metrics: dict) -> None:
    if not (self.enabled and self._tb):
      return
    tf = self._tb[0]
    with self._tb[1].as_default(step=step):
      for k, v in metrics.items():
        v = np.asarray(v)
        if v.ndim == 0:
          tf.summary.scalar(f"{prefix}/{k}", float(v))
        else:
          for i, vi in enumerate(v.ravel()):
            tf.summary.scalar(f"{prefix}/{k}_{i}", float(vi))
    self._tb[1].flush()

  def close(self) -> None:
    if self._tb:
      self._tb[1].close()


def _tensorboard_writer(logdir: str):
  try:
    from cca_jax.train.input_pipeline import import_tensorflow
    tf = import_tensorflow()  # quiet, and kept off the accelerators
  except ImportError:
    print("note: TensorFlow is not installed; no TensorBoard summaries",
          file=sys.stderr)
    return None
  return tf, tf.summary.create_file_writer(logdir)


class Throughput:
  """Steps/s and images/s since the last call."""

  def __init__(self, step: int):
    self.step, self.time = step, time.perf_counter()

  def update(self, step: int, batch_size: int) -> tuple[float, float]:
    now = time.perf_counter()
    dt = max(now - self.time, 1e-9)
    rate = (step - self.step) / dt
    self.step, self.time = step, now
    return rate, rate * batch_size
