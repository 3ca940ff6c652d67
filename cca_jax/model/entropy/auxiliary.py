"""The auxiliary entropy model of the CCA loss (official models/aux_em.py).

Same structure as the main channel-wise model, but slice ``i`` is predicted from the
hyperprior and ``y_hat_0 .. y_hat_{i-2}`` only: it never sees the immediately preceding
slice. It shares the main model's ``latent_means`` / ``latent_scales`` and works on the
*unquantised* ``y``, building its own ``y_hat`` context (own means, straight-through
rounding, LRP only for the first ``n - 2`` slices, the only ones ever used as context).

It returns two likelihood tensors used by the losses (training only, never coded):

* ``y_cca``: bin masses of ``y`` under the aux Gaussian conditional (R_cca);
* ``y_aux``: bin masses of ``y`` under its own factorized ``EntropyBottleneck(M)``
  (the ``p_fact`` of ``aux2_loss``), each with its own uniform-noise draw in training.
"""

from __future__ import annotations

from cca_jax.model.entropy.bottleneck import EntropyBottleneck
from cca_jax.model.entropy.context import ChannelContext


class AuxEntropyModel(ChannelContext):
  """``ChannelContext`` with ``context_skip=1`` and ``n - 2`` LRP heads, plus a
  factorized bottleneck over ``y``. Use ``AuxEntropyModel.for_sizes``."""

  @classmethod
  def for_sizes(cls, sizes, em_dim, em_layers, cc_dims, **kw):
    n = len(sizes)
    return cls(sizes=tuple(sizes), em_dim=em_dim, em_layers=em_layers,
               cc_dims=tuple(cc_dims), context_skip=1, num_lrp=max(n - 2, 0), **kw)

  def setup(self):
    super().setup()
    self.y_entropy_bottleneck = EntropyBottleneck(sum(self.sizes))

  def rates(self, y, latent_means, latent_scales, training: bool,
            noise_cca=None, noise_aux=None):
    """Returns ``(y_aux_likelihoods, [y_cca_likelihoods per slice])``.

    ``noise_cca`` (a list per slice) and ``noise_aux`` (y's shape) inject the uniform
    noise draws; when ``None`` they come from the ``'noise'`` RNG stream.
    """
    _, mus, scales = self(y, latent_means, latent_scales)
    cca = self.likelihoods(y, mus, scales, training, noise_cca)
    _, aux = self.y_entropy_bottleneck(y, training, noise_aux)
    return aux, cca
