"""Training: from a resolved recipe to a run folder, and back to a model.

Stage building (`stage`), the data of a stage (`data_setup`), the loop (`loop`) and the step (`step`),
the non-finite policy (`nonfinite`), checkpoints (`checkpoint`: the file format; `snapshot`: what a run
stores and restores), the run folder (`run_dir`), data parallelism (`distributed`), held-out
validation (`validation`), sample sheets, curves, the terminal (`terminal`) and the metrics log
(`metrics_log`), the checks ``facerep run`` makes before training (`recipe_check`), the command's
device (`device`) and loading a trained run (`run`). `trainer.Trainer` puts them together.

Components are built through the registry by name: nothing here imports a plugin.
"""
