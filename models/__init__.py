"""Scoring: voter features, online population models and per-voter Bayesian evidence.

Pure Python: nothing here imports Kafka, Faust or Redis.
"""
