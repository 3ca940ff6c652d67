"""Checkpoint import/export, and whole-model parity with an independent PyTorch
reference of the official model (tests/torch_reference.py)."""

import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from conftest import KODAK, ROOT, load_config
from cca_jax import convert_torch as ct
from cca_jax.model import torch_checkpoint as tc
from cca_jax.model.cca import CCAModel, param_shapes

TSV = os.path.join(ROOT, "..", "shared", "docs", "official_state_dict.tsv")


def _tsv_rows():
  rows = []
  with open(TSV) as f:
    for line in f:
      if line.startswith("#") or line.startswith("name\t"):
        continue
      name, shape, _, numel, kind, part = line.rstrip("\n").split("\t")
      dims = tuple(int(s) for s in shape.split("x")) if shape else ()
      rows.append((name, dims, kind, part))
  return rows


def _flat_shapes(tree):
  return {p: tuple(v.shape) for p, v in traverse_util.flatten_dict(tree).items()}


def test_official_names_cover_the_paper_model_exactly():
  """Every official parameter maps to one Flax parameter of the right shape, and
  every Flax parameter is hit (paper config, with the aux model)."""
  model = CCAModel.from_config(load_config("paper").model)
  expected = _flat_shapes(param_shapes(model))
  rows = [r for r in _tsv_rows() if r[2] == "parameter"]
  assert len(rows) == len(expected)
  seen = set()
  for name, dims, _, _ in rows:
    fake = np.zeros(dims, np.float32)
    path = tc.torch_to_flax_path(name)
    if path not in expected and path[-1] == "weight":
      path = path[:-1] + ("kernel",)
    assert path in expected, name
    assert tc._to_flax_layout(name, fake).shape == expected[path], name
    assert tc.flax_to_torch_name(path) == name
    seen.add(path)
  assert seen == set(expected)
  buffers = [r[0] for r in _tsv_rows() if r[2] == "buffer"]
  assert buffers and all(tc.is_buffer(b) for b in buffers)


# ---------------------------------------------------------------------------
# Parity with the PyTorch reference on a tiny config.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ref(torch_single_thread):
  torch = torch_single_thread
  import torch_reference as tr
  cfg = load_config("tiny").model
  net = tr.CCARef.from_config(cfg)
  tr.randomize_(net, seed=3)
  net.eval()
  sd = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
  model = CCAModel.from_config(cfg)
  params = tc.torch_to_flax(sd, param_shapes(model))
  return torch, tr, net, sd, cfg, model, params


def _image(h=64, w=128, seed=0):
  """A smooth, natural-ish test image (a Kodak crop when available)."""
  path = os.path.join(KODAK, "kodim23.png")
  if os.path.exists(path):
    from PIL import Image
    arr = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
    return arr[200:200 + h, 300:300 + w]
  rng = np.random.default_rng(seed)
  return rng.uniform(0, 1, (h, w, 3)).astype(np.float32)


def _nchw(torch, x):
  return torch.from_numpy(np.array(np.moveaxis(np.asarray(x), -1, 1)))


def _nhwc(t):
  return np.moveaxis(t.detach().numpy(), 1, -1)


def _close(a, b, rtol=1e-4, atol=1e-4, frac=0.0):
  """Allclose, allowing a tiny fraction of elements to differ (rounding flips)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  assert a.shape == b.shape
  bad = ~np.isclose(a, b, rtol=rtol, atol=atol)
  assert bad.mean() <= frac, f"{bad.sum()} of {bad.size} differ; max {np.abs(a - b).max()}"


def test_roundtrip_state_dict(ref):
  _, _, _, sd, _, _, params = ref
  back = tc.flax_to_torch(params)
  for k, v in sd.items():
    if tc.is_buffer(k):
      continue
    np.testing.assert_array_equal(back[k], v, err_msg=k)
  assert set(back) == {k for k in sd if not tc.is_buffer(k)}


def test_eval_forward_matches_reference(ref):
  torch, tr, net, _, _, model, params = ref
  x = _image()[None]
  with torch.no_grad():
    r = net(_nchw(torch, x), training=False)
  out = jax.jit(lambda p, x: model.apply({"params": p}, x, training=False))(params, x)
  _close(out["y"], _nhwc(r["y"]))
  _close(out["z"], _nhwc(r["z"]))
  _close(out["z_hat"], _nhwc(r["z_hat"]), frac=0.002)
  _close(out["latent_means"], _nhwc(r["latent_means"]), atol=1e-3, frac=0.01)
  _close(jnp.concatenate(out["likelihoods"]["y"], -1), _nhwc(r["likelihoods"]["y"]),
         atol=1e-4, frac=0.01)
  _close(out["likelihoods"]["z"], _nhwc(r["likelihoods"]["z"]), frac=0.01)
  _close(out["x_hat"], _nhwc(r["x_hat"]), atol=1e-3, frac=0.01)
  # Totals: the estimated rate agrees to 1e-3 relative.
  bits = lambda l: -np.sum(np.log2(np.asarray(l, np.float64)))
  ours = sum(bits(l) for l in out["likelihoods"]["y"]) + bits(out["likelihoods"]["z"])
  theirs = bits(r["likelihoods"]["y"].numpy()) + bits(r["likelihoods"]["z"].numpy())
  assert ours == pytest.approx(theirs, rel=1e-3)


def test_training_forward_and_loss_match_reference(ref):
  """Same weights, same injected noise: every loss term matches the reference."""
  torch, tr, net, _, cfg, model, params = ref
  from cca_jax.model.entropy.context import split_slices
  from cca_jax.model.losses import rd_loss
  x = _image()[None]
  sizes = model.sizes
  rng = np.random.default_rng(7)
  y_shape = (1, 4, 8, cfg.M)
  z_shape = (1, 1, 2, cfg.N)
  u = lambda s: rng.uniform(-0.5, 0.5, s).astype(np.float32)
  noise = {"z": u(z_shape), "y": split_slices(u(y_shape), sizes),
           "y_cca": split_slices(u(y_shape), sizes), "y_aux": u(y_shape)}
  tnoise = {"z": _nchw(torch, noise["z"]), "y_aux": _nchw(torch, noise["y_aux"]),
            "y": [_nchw(torch, np.asarray(n)) for n in noise["y"]],
            "y_cca": [_nchw(torch, np.asarray(n)) for n in noise["y_cca"]]}
  r = net(_nchw(torch, x), training=True, noise=tnoise)
  rl = tr.rd_loss(r, _nchw(torch, x), beta=0.3)
  out = model.apply({"params": params}, x, training=True, noise=noise)
  jl = rd_loss(out, jnp.asarray(x), lmbda=0.3)
  pairs = [("bpp_y", "bpp_y"), ("bpp_z", "bpp_z"), ("bpp", "bpp_loss"),
           ("cca", "cca_loss"), ("aux2", "aux2_loss"), ("mse", "mse_loss"),
           ("bpp_cca", "bpp_cca"), ("loss", "loss")]
  for ours, theirs in pairs:
    assert float(jl[ours]) == pytest.approx(float(rl[theirs].detach()), rel=2e-3, abs=1e-5), ours
  _close(jnp.concatenate(out["likelihoods"]["y_cca"], -1), _nhwc(r["likelihoods"]["y_cca"]),
         atol=1e-4, frac=0.01)
  _close(out["likelihoods"]["y_aux"], _nhwc(r["likelihoods"]["y_aux"]), atol=1e-4, frac=0.01)
  # The quantile loss (both bottlenecks) matches too.
  q = model.apply({"params": params}, method="quantile_loss")
  assert float(q) == pytest.approx(float(tr.quantile_loss(net).detach()), rel=1e-4)


def _save_checkpoint(torch, sd, path, wrap=True, prefix="module."):
  tensors = {prefix + k: torch.from_numpy(v) for k, v in sd.items()}
  torch.save({"state_dict": tensors, "epoch": 3} if wrap else tensors, path)


def test_cli_converts_and_estimates_like_the_official_eval(ref, tmp_path, capsys):
  """``convert_torch --image`` agrees with the reference evaluation: pad to 128
  (centred zeros), bpp from likelihoods over unpadded pixels, PSNR on the clamped
  output."""
  torch, tr, net, sd, _, _, _ = ref
  ckpt = str(tmp_path / "ckpt.pth.tar")
  _save_checkpoint(torch, sd, ckpt)
  img = _image(100, 150)
  from PIL import Image
  img_path = str(tmp_path / "img.png")
  Image.fromarray(np.round(img * 255).astype(np.uint8)).save(img_path)
  x8 = np.asarray(Image.open(img_path), np.float32) / 255.0
  out_dir = str(tmp_path / "workdir")
  tiny = os.path.join(ROOT, "configs", "tiny.py")
  rc = ct.main([ckpt, "--config", tiny, "--out", out_dir, "--image", img_path])
  assert rc == 0
  text = capsys.readouterr().out
  m = re.search(r"bpp_est=([0-9.]+) psnr=([0-9.]+)", text)
  assert m, text
  # Reference: official eval.py protocol in torch.
  xt = _nchw(torch, x8[None])
  h, w = 100, 150
  pad = ((256 - w) // 2, (256 - w) - (256 - w) // 2, (128 - h) // 2, (128 - h) - (128 - h) // 2)
  xp = torch.nn.functional.pad(xt, pad, mode="constant", value=0)
  with torch.no_grad():
    r = net(xp, training=False)
  x_hat = r["x_hat"].clamp(0, 1)[:, :, pad[2]:pad[2] + h, pad[0]:pad[0] + w]
  bits = sum(float(-torch.log2(l).sum()) for l in (r["likelihoods"]["y"], r["likelihoods"]["z"]))
  bpp = bits / (h * w)
  psnr = float(-10 * torch.log10(((x_hat - xt) ** 2).mean()))
  assert float(m.group(1)) == pytest.approx(bpp, rel=1e-3)
  assert float(m.group(2)) == pytest.approx(psnr, abs=0.01)
  # The training workdir (step 0) loads back to the same parameters, aux model included.
  from cca_jax.train.checkpointing import load_latest_params
  cfg, params, step = load_latest_params(out_dir)
  assert cfg["aux_model"] is True and step == 0 and "aux_entropymodel" in params
  np.testing.assert_array_equal(
      params["g_a"]["down_0"]["kernel"], sd["g_a.down.0.weight"].transpose(2, 3, 1, 0))
  assert ct.main([ckpt, "--config", tiny, "--out", out_dir]) == 1  # not a new directory
  assert "not an empty folder" in capsys.readouterr().err
  # A bundle: the inference model of the same weights.
  from cca_jax.codec import load_bundle
  out = str(tmp_path / "official.ccam")
  assert ct.main([ckpt, "--config", tiny, "--out", out, "--no-register"]) == 0
  b = load_bundle(out)
  assert b.meta == {"source": ckpt} and "aux_entropymodel" not in b.params
  np.testing.assert_array_equal(
      b.params["g_a"]["down_0"]["kernel"], sd["g_a.down.0.weight"].transpose(2, 3, 1, 0))


def test_bare_state_dict_without_aux(ref, tmp_path):
  torch, _, _, sd, cfg, _, _ = ref
  main_only = {k: v for k, v in sd.items() if not k.startswith("aux_entropymodel.")}
  ckpt = str(tmp_path / "bare.pth")
  _save_checkpoint(torch, main_only, ckpt, wrap=False, prefix="")
  model_cfg, params = ct.convert(ckpt, cfg)
  assert model_cfg.aux_model is False and "aux_entropymodel" not in params


def test_mismatches_name_the_tensor(ref):
  _, _, _, sd, cfg, model, _ = ref
  shapes = param_shapes(model)
  bad = dict(sd)
  bad["h_a.2.weight"] = np.zeros((1, 2, 3, 3), np.float32)
  with pytest.raises(tc.ConversionError, match=r"h_a\.2\.weight"):
    tc.torch_to_flax(bad, shapes)
  missing = {k: v for k, v in sd.items() if k != "g_s.up.1.bias"}
  with pytest.raises(tc.ConversionError, match=r"g_s\.up\.1\.bias"):
    tc.torch_to_flax(missing, shapes)
  extra = dict(sd, **{"g_a.extra.0.weight": np.zeros((1,), np.float32)})
  with pytest.raises(tc.ConversionError, match=r"g_a\.extra\.0\.weight"):
    tc.torch_to_flax(extra, shapes)
  paper = CCAModel.from_config(load_config("paper").model)
  with pytest.raises(tc.ConversionError, match="does not fit"):
    tc.torch_to_flax(sd, param_shapes(paper))


def test_cli_rejects_garbage(tmp_path, capsys):
  junk = tmp_path / "junk.pth"
  junk.write_bytes(b"not a checkpoint at all")
  rc = ct.main([str(junk), "--config", os.path.join(ROOT, "configs", "tiny.py"),
                "--out", str(tmp_path / "o")])
  err = capsys.readouterr().err.strip()
  assert rc == 1 and err.startswith("error:") and len(err.splitlines()) == 1
  assert not (tmp_path / "o").exists()


def test_reference_reproduces_the_official_state_dict(torch_single_thread):
  """The reference the parity tests use has exactly the official names and shapes."""
  torch = torch_single_thread
  import torch_reference as tr
  net = tr.CCARef()
  sd = {k: tuple(v.shape) for k, v in net.state_dict().items()}
  official = {name: dims for name, dims, _, _ in _tsv_rows()}
  assert set(sd) == set(official)
  for name, dims in official.items():
    assert sd[name] == dims, name
