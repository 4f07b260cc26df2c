"""Step-by-step explanations of one layer, as lines of text."""
