"""The model organism: a small multilingual Llama trained on CPU in which transfer neurons exist.

world.py (people, events) -> grammar.py (five languages, lexicon.py) -> documents.py (training stream) and
sets.py (Tatoeba-layout sets, MKQA questions) -> tokenizer.py + train.py (the model) -> targets.py (issue 9's
targets measured with tn itself) -> figure.py. `python -m tn.organism --help` rebuilds and measures it.
"""
