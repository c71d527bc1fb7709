"""Lesson code of the notebooks: demos, figures, exercises' scaffolding; one module per notebook."""
