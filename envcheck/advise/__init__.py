"""Advice from facts and knowledge: install plans, memory and time estimates, recommendations."""
