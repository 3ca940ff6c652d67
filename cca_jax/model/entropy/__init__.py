"""Entropy models of the CCA model: factorized bottleneck (z), Gaussian conditional,
uneven channel groups, the channel-wise autoregressive context model and the
auxiliary entropy model of the CCA loss."""
