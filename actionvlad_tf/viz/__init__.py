"""Figures: confusion matrices (and, from other modules, action-word maps and t-SNE plots)."""
