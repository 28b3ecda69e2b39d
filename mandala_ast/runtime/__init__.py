"""What compiled code and the public API call: refs, hashing, codecs, storage, blocks.

Never imports libcst (DESIGN §2): a warm import of a compiled module must not parse anything.
"""
