"""Tokenizers (train / load / convert) and the Megatron indexed-dataset shard format.

Pure Python + numpy + HF ``tokenizers``; no Beam import, so the trainer can use it directly::

    from tokenization.shards import open_split, load_tokenizer
    train = open_split("shards/", "train")      # list of memory-mapped IndexedDataset
    tok = load_tokenizer("shards/")
"""
