"""Learned and network-based baselines (need torch)."""
