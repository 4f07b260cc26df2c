"""The explainer: the tutorials' worked examples, a NumPy reference, step-by-step walkthroughs.
A leaf: nothing else in convscope imports it."""
