"""Evaluation: the feature classifier, sample-quality metrics, the leaderboard."""
