"""The cca-jax codec: real bitstreams from exported model bundles.

  bundle.py    the exported model bundle (weights, config, coding tables, content hash)
  registry.py  where models are found: shipped qualities, the user's, $CCA_JAX_MODEL
  steps.py     the jit-compiled device functions shared by encoder and decoder
  coder.py     entropy coding of symbols with constriction (ANS), escapes
  format.py    the .cca container (header, parts, checksum)
  codec.py     encode / decode, compress / decompress
  errors.py    CodecError
"""

from cca_jax.codec.bundle import (ModelBundle, find_bundle, load_bundle, make_bundle,
                                  read_manifest, save_bundle)
from cca_jax.codec.codec import compress, decode, decompress, encode
from cca_jax.codec.errors import CodecError

__all__ = ["ModelBundle", "find_bundle", "load_bundle", "make_bundle", "read_manifest",
           "save_bundle", "compress", "decode", "decompress", "encode", "CodecError"]
