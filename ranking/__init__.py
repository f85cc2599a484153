"""Ranking: features, fusion functions (pure), click/impression schema, training, evaluation."""
