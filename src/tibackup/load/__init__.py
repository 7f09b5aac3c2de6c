"""The loader: a backup in Dumpling's layout back into TiDB/MySQL, the dump read backwards.

source (what is there: a folder, an S3 prefix, a .tgz) → plan (what to load, in which order) →
read (stored bytes → verified, decompressed, split into statements) → execute (parallel sessions) →
checkpoint (progress in the target, in the same transaction as the rows). ``loader.run_load`` is the
whole flow; read it first.
"""
