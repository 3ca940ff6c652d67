"""Paper-size parity: random official-layout weights, converted, evaluated on a Kodak
image by ``convert_torch``'s path and by the PyTorch reference (official eval.py
protocol). Prints both results and the forward times.

  .venv/bin/python benchmarks/paper_parity.py [--image ../shared/data/kodak/kodim01.png]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--image", default=os.path.join(ROOT, "..", "shared", "data", "kodak",
                                                 "kodim01.png"))
  p.add_argument("--threads", type=int, default=2)
  args = p.parse_args()
  import torch
  torch.set_num_threads(args.threads)
  import torch_reference as tr
  from cca_jax import convert_torch as ct
  from cca_jax.config import load_config_file
  from cca_jax.model.inference import estimate_image
  from cca_jax.utils.image_io import read_image

  net = tr.CCARef()
  tr.randomize_(net, seed=1)
  net.eval()
  with tempfile.TemporaryDirectory() as d:
    ckpt = os.path.join(d, "ckpt.pth.tar")
    torch.save({"state_dict": net.state_dict()}, ckpt)
    t = time.time()
    cfg, params = ct.convert(ckpt, load_config_file(os.path.join(ROOT, "configs", "paper.py")).model)
    print(f"convert: {time.time() - t:.1f} s")
  x, _ = read_image(args.image)
  h, w = x.shape[:2]
  t = time.time()
  r = estimate_image(cfg, params, x)
  t_first = time.time() - t
  t = time.time()
  r = estimate_image(cfg, params, x)
  t_jax = time.time() - t
  print(f"jax:   bpp_est={r['bpp_est']:.6f} psnr={r['psnr']:.4f}  "
        f"(first call incl. compile {t_first:.1f} s, then {t_jax:.1f} s)")

  xt = torch.from_numpy(np.moveaxis(x, -1, 0)[None].copy())
  ph, pw = -h % 128, -w % 128
  pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
  t = time.time()
  with torch.no_grad():
    out = net(torch.nn.functional.pad(xt, pad), training=False)
  t_torch = time.time() - t
  x_hat = out["x_hat"].clamp(0, 1)[:, :, pad[2]:pad[2] + h, pad[0]:pad[0] + w]
  bits = sum(float(-torch.log2(l).sum()) for l in (out["likelihoods"]["y"], out["likelihoods"]["z"]))
  psnr = float(-10 * torch.log10(((x_hat - xt) ** 2).mean()))
  print(f"torch: bpp_est={bits / (h * w):.6f} psnr={psnr:.4f}  ({t_torch:.1f} s, "
        f"{args.threads} threads)")
  print(f"relative bpp difference {abs(r['bpp_est'] - bits / (h * w)) / (bits / (h * w)):.2e}, "
        f"PSNR difference {abs(r['psnr'] - psnr):.4f} dB")


if __name__ == "__main__":
  main()
