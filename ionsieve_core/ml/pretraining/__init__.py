"""How the shipped default model was made: the generated training data (`synthetic`) and the
training run that writes `ionsieve_core/ml/default_model/` (`pretrain`). Nothing here runs in the
app; `python -m ionsieve_core.ml.pretraining.pretrain` remakes the model."""
