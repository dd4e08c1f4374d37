"""Where the index lives: one writer interface (``base``), the local FAISS generations and Milvus behind it."""
