"""Repository-aware context: chunking, embeddings, stores, indexing, retrieval and citations."""
