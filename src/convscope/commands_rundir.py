"""What every Hydra job does to its run dir before it writes a result there.

One writer, never two runs' files in one dir: a job takes the dir's lock first (rundir/owner.py; a
second job into the same dir at the same moment is refused), then a dir that holds a run is refused
(exit 2, naming it) unless the user set `replace=true`, and then it is emptied first, once the config
has been validated. replace=true empties only what a convscope run accounts for (its `.convscope`
record): any other file in the dir refuses the replace, naming it. Hydra's own record (.hydra/) is
written here rather than by Hydra (hydra.output_subdir is null in configs/*.yaml): Hydra would write
it before the job runs, so a refused or rejected config would rewrite a finished run's record. Temp
files that killed runs left beside this dir are removed.

Two steps, so that validation sits between them:
    job_dir = check_job_dir(cfg)      # first thing in a job: lock, refuse a used dir
    ... validate the config ...
    with job_dir.opened(inputs):      # input inside the dir refused; replace; .hydra/; stale temps
        ... the job ...

With replace=true the previous run is set aside (.replaced/) rather than deleted, and comes back
if the new run fails (bad input found while planning, an OS error, Ctrl-C): replacing a run never
leaves neither. A `.replaced/` that a killed replacing run left is settled first (put back, or
dropped if the new run had finished), never deleted unread. In a multirun a failed job keeps its
error.json instead (the sweep lists it).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from omegaconf import DictConfig, OmegaConf

from convscope.errors import ConvscopeError
from convscope.files import partial_is_stale, partials, write_text
from convscope.rundir import RunDir, owner
from convscope.rundir.layout import release_new_dir

log = logging.getLogger("convscope")

_current: Optional[Path] = None  # this process's job dir, for the interrupt message
_unopened: Optional["JobDir"] = None  # a fresh dir this job claimed and has not opened yet


def current_job_dir() -> Optional[Path]:
    """The dir the running job writes into (None before a job has started)."""
    return _current


@dataclass
class JobDir:
    path: Path
    key: str  # the config key that chose the dir: hydra.run.dir or hydra.sweep.dir
    replace: bool
    task_cfg: Any  # the config Hydra passed to the job, for .hydra/config.yaml
    lock: owner.DirLock  # held until the job ends
    previous: list[str] = field(default_factory=list)  # what an earlier run left here

    def open(self, inputs: Iterable[Path] = ()) -> None:
        """After validation: refuse an input inside the dir, empty it if replacing, write
        .hydra/, and remove temp files that killed runs left here or beside it."""
        for given in inputs:
            self._refuse_inside(Path(given))
        if self.previous:
            _close_log_files_under(self.path)  # reopened at the next line, in the emptied dir
            recovered = owner.recover_aside(self.path)
            owner.set_aside(self.path)
            owner.claim(self.path)
            if recovered:
                log.info("replace=true: %s/ was left by a replacing run that was killed; %s",
                         RunDir.REPLACED, recovered)
            log.info("replace=true: removed the previous run in %s (%s; kept in %s/ until this "
                     "run finishes)", self.path, ", ".join(self.previous), RunDir.REPLACED)
            _write_hydra_record(self.path, self.task_cfg)
        remove_stale_partials(self.path)

    @contextmanager
    def opened(self, inputs: Iterable[Path] = ()) -> Iterator[None]:
        """open(), then the job; a replaced run is dropped once the job ends, or put back if the
        job fails (not in a multirun, whose failed jobs keep their error.json)."""
        global _unopened
        _unopened = None  # from here on the dir is the run's, refused or not
        try:
            self.open(inputs)
        except BaseException:  # refused (an input inside the dir) or cut short while replacing
            self._settle(failed=True, sealed=False)
            raise
        try:
            yield
        except SystemExit:  # the job ran to its end and chose its exit status (the explainer)
            self._settle(failed=False)
            raise
        except BaseException:
            self._settle(failed=self.key != "hydra.sweep.dir")
            raise
        self._settle(failed=False)

    def _settle(self, failed: bool, sealed: bool = True) -> None:
        """Put the previous run back (failed), or seal this run's record and drop the previous
        one; then give the dir up. `sealed=False`: the job never started (nothing to record)."""
        try:
            if failed and self.previous:
                _close_log_files_under(self.path)
                owner.recover_aside(self.path)  # what this run wrote goes, the old run comes back
                return
            if failed and self.key == "hydra.run.dir" and _holds_no_result(self.path):
                _remove_claimed(self)  # refused while planning: nothing to show, no dir left
                return
            if not sealed:
                return
            owner.seal(self.path, "failed" if failed else "finished")
            if self.previous:
                owner.drop_aside(self.path)
        finally:
            self.lock.release()

    def _refuse_inside(self, given: Path) -> None:
        real, here = Path(os.path.realpath(given)), Path(os.path.realpath(self.path))
        if real == here or here in real.parents:
            raise ConvscopeError(
                f"data.path: {given} is inside the run dir {self.path} ({self.key}), which this "
                f"run writes into; move the input out or choose another {self.key}")


def check_job_dir(cfg: DictConfig | Any) -> JobDir:
    """First thing in a job: take the dir's lock, then refuse a dir that holds a run (unless
    `replace=true`) or holds files no convscope run accounts for, before anything is written; a
    fresh dir is claimed and gets its .hydra/ record at once (a sweep's summary finds every job
    by it, a job rejected later included)."""
    global _current
    from hydra.core.hydra_config import HydraConfig  # Hydra's state: only inside a job
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    path = Path(hydra_cfg.runtime.output_dir)
    key = "hydra.sweep.dir" if hydra_cfg.mode == RunMode.MULTIRUN else "hydra.run.dir"
    replace = bool(cfg.get("replace", False)) if hasattr(cfg, "get") else False
    _current = path
    refuse_foreign(path, key)  # before the lock: its file is not written into someone's folder
    lock = owner.try_lock(path)
    if lock is None:
        raise ConvscopeError(
            f"{key}: another convscope run is writing into {path} right now; wait for it to end "
            f"or choose another dir (without {key} every run gets its own)")
    try:
        refuse_foreign(path, key)  # again, now that nobody else can change the dir
        previous = RunDir(path).previous_run()
        if previous and not replace:
            raise ConvscopeError(
                f"{key}: {path} already holds a run ({_listed(previous)}); choose a new dir "
                f"(without {key} every run gets its own) or add replace=true to remove that run "
                "first")
        if not previous:
            owner.claim(path)
            _write_hydra_record(path, cfg)
    except BaseException:
        lock.release()
        raise
    job_dir = JobDir(path=path, key=key, replace=replace, task_cfg=cfg, lock=lock,
                     previous=previous)
    global _unopened
    # a sweep keeps a refused job's dir: its summary lists the refusal by the job's record
    _unopened = job_dir if not previous and key == "hydra.run.dir" else None
    return job_dir


def abandon_unopened() -> None:
    """The job was refused before it opened the fresh dir it claimed (a config value only the
    job's own checks reject): what check_job_dir wrote goes, and the dir too when nothing else is
    in it, so a refused run leaves no run dir behind."""
    global _unopened
    job_dir, _unopened = _unopened, None
    if job_dir is not None and job_dir.path.is_dir():
        _remove_claimed(job_dir)


def _holds_no_result(path: Path) -> bool:
    """Only what claiming the dir wrote: Hydra's record and the logs."""
    return all(name.partition("/")[0] in {RunDir.HYDRA, *RunDir.LOG_NAMES}
               for name in owner.files_in(path))


def _remove_claimed(job_dir: JobDir) -> None:
    """What check_job_dir wrote into a fresh dir goes, and the dir when nothing else is in it."""
    _close_log_files_under(job_dir.path, detach=True)
    job_dir.lock.release()
    for name in (RunDir.HYDRA, RunDir.RECORD, owner.RECORD_TMP, RunDir.LOCK, *RunDir.LOG_NAMES):
        owner.remove_entry(job_dir.path / name)
    release_new_dir(job_dir.path)  # only if empty: anything else in it stays


def refuse_foreign(path: Path, key: str) -> None:
    """A dir holding files that no convscope run accounts for is never written into, nor emptied
    by replace=true: one line naming the first of them."""
    if not path.is_dir():
        return
    foreign = [name for name in owner.foreign_files(path)
               if name.partition("/")[0] not in RunDir.LOG_NAMES]  # Hydra may have opened one
    if not foreign:
        return
    if owner.read_record(path) is not None:
        why = "that its .convscope record does not list"
    else:  # nothing in it is convscope's: its top-level names say more than its first files
        foreign = sorted({name.partition("/")[0] for name in foreign})
        why = (f"and no {RunDir.RECORD} record, so it is not a convscope run dir (a .hydra/ "
               "alone is any Hydra app's)")
    raise ConvscopeError(
        f"{key}: {path} holds files ({_listed(foreign)}) {why}; convscope neither writes into "
        "it nor empties it with replace=true: move them out or choose another dir")


def remove_stale_partials(run_dir: Path) -> None:
    """Temp files (.*.partial-*) whose writer is gone, in this dir and in the run dirs beside it
    (a killed run's `finally` never ran): removed; those whose writer cannot be told: logged."""
    roots = [run_dir]
    parent = run_dir.parent
    try:
        roots += [entry for entry in parent.iterdir() if entry.is_dir() and entry != run_dir
                  and (RunDir(entry).looks_like_run() or RunDir(entry).multirun.is_file())]
    except OSError:
        pass  # the parent is not ours to list: this dir alone
    removed, freed, unknown = 0, 0, []
    for root in roots:
        for path in partials(root):
            stale = partial_is_stale(path)
            if stale is None:
                unknown.append(path)
                continue
            if stale:
                try:
                    size = path.stat().st_size
                    path.unlink()
                except OSError:
                    continue
                removed, freed = removed + 1, freed + size
    if removed:
        log.info("removed %d unfinished temp file(s) (%.1f MB) that killed runs left under %s",
                 removed, freed / 1e6, parent)
    if unknown:
        log.warning("%d temp file(s) of unknown writers under %s (e.g. %s): delete them if no "
                    "run is writing there", len(unknown), parent, unknown[0])


def _write_hydra_record(path: Path, task_cfg: Any) -> None:
    """.hydra/config.yaml (the task's config), hydra.yaml and overrides.yaml, as Hydra writes
    them."""
    from hydra.core.hydra_config import HydraConfig  # Hydra's state: only inside a job

    hydra_node = HydraConfig.instance().cfg  # {"hydra": ...}
    files = RunDir(path)
    write_text(files.hydra_config, OmegaConf.to_yaml(task_cfg))
    write_text(files.hydra_hydra, OmegaConf.to_yaml(hydra_node))
    write_text(files.hydra_overrides, OmegaConf.to_yaml(hydra_node.hydra.overrides.task))


def _close_log_files_under(path: Path, detach: bool = False) -> None:
    """Close the log files under `path` (a FileHandler reopens at its next record: run.log in
    the emptied dir); `detach`: also take them off the root logger, for a dir that goes away (a
    later job in this process would otherwise log into a folder that no longer exists)."""
    here = Path(os.path.realpath(path))
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            if here in Path(os.path.realpath(handler.baseFilename)).parents:
                handler.close()
                if detach:
                    root.removeHandler(handler)


def _listed(names: list[str], most: int = 4) -> str:
    more = f", ... {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more
