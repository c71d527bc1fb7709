"""One small module per method. A method is an ``nn.Module`` that owns its networks and
implements ``training_step(x, y) -> loss`` (and optionally ``after_step(step, total_steps)``
for momentum updates); ``course_utils.train.train`` runs the rest."""
