"""convscope's `hydra/launcher=submitit_slurm` (slurm_launcher.py). Hydra instantiates launchers
only from the hydra_plugins namespace, so the class lives here; its logic is in
convscope.sweep.slurm_jobs."""
