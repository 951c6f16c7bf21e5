"""Evaluation on MICC Florence: protocols, scoring, baselines, tables and error maps (`facerep bench`)."""
