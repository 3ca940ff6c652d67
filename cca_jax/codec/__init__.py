"""The cca-jax codec: real bitstreams from exported model bundles.

  bundle.py       the exported model bundle (weights, config, coding tables, content hash)
  registry.py     where models are found: shipped qualities, the user's, $CCA_JAX_MODEL
  programs.py     the jit-compiled programs shared by encoder and decoder (float and
                  integer entropy parameters)
  coder.py        entropy coding of symbols with constriction (ANS), escapes
  format.py       the .cca container (header, parts, checksum)
  image_codec.py  encode / decode, compress / decompress: the codec's slice loop
  errors.py       CodecError

Imports cca_jax.model, cca_jax.ops, cca_jax.utils and cca_jax.config.
"""

from cca_jax.codec.bundle import (ModelBundle, find_bundle, load_bundle, make_bundle,
                                  read_manifest, save_bundle)
from cca_jax.codec.errors import CodecError
from cca_jax.codec.image_codec import compress, decode, decompress, encode

__all__ = ["ModelBundle", "find_bundle", "load_bundle", "make_bundle", "read_manifest",
           "save_bundle", "compress", "decode", "decompress", "encode", "CodecError"]
