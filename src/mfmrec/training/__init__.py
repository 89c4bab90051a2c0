"""The one trainer of every model (VIP5, IISAN, the baselines), on ``accelerate``.

* :mod:`~mfmrec.training.config` -- ``TrainConfig``, ``RunConfig``, ``load_run_config``;
* :mod:`~mfmrec.training.data` -- the (seed, epoch) batch sampler and the DataLoader;
* :mod:`~mfmrec.training.trainer` -- ``Trainer`` (AdamW, warm-up + linear decay,
  clipping, autocast, DDP/FSDP, checkpoints, exact resume);
* :mod:`~mfmrec.training.checkpoint` -- checkpoint files and ``load_run``;
* :mod:`~mfmrec.training.run` -- ``train(config, data_dir, out_dir)``: a whole run
  directory, as ``mfmrec train`` writes it.
"""
