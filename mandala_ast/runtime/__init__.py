"""What compiled code and the public API call: refs, hashing, codecs, storage, blocks.

Never imports libcst: a warm import of a compiled module must not parse anything.
"""
