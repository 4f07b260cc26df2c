"""Everything that writes a run dir: one-shot, streamed, corpus, evaluate and learn stages."""
