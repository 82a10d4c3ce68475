"""Does a material model make what the prompt asks for? The evaluation of the embedded default model (issue 12).

Modules, one concern each:
  prompts.py          the prompt file: text plus what it asks for (family, colour, metal, gloss)
  attributes.py       colour names as hue/saturation/value rules, metal and gloss checks (thresholds argued there)
  diversity.py        how different the materials of one prompt's seeds are
  classifier.py       the family classifier: network, input preparation, views, prediction
  classifier_data.py  procedural training and test sets (seeded, cached) and the augmentations
  classifier_train.py training (deterministic by seed), verification at the output size, saving and loading
  generation.py       one prompt x seed through the pipeline at the user's default settings -> a stored record
  vae_eval.py         reconstruction of held-out procedural materials by a model's VAE
  report.py           summary figures beside the issue's targets, Markdown tables
  sheets.py           contact sheets and the VAE figure (PNG)
  errors.py           bad input to an entry point: one line on stderr, exit code 2

Entry point: benchmarks/default_model_eval.py (run by hand, never in CI).
"""
