"""The original project's training recipe, as a short composition of fastai calls.

At each image size (progressive resizing, e.g. 300 then 350 px):

1. stage 1, ``frozen-<size>``: the pretrained body frozen, ``fit_one_cycle`` on the head;
2. stage 2, ``unfrozen-<size>`` (``--stage2``): everything unfrozen, ``fit_one_cycle`` with
   discriminative learning rates, ``slice(lr / 200, lr / 2)`` (fastai ``fine_tune``'s rule).

The learning rate is ``--lr`` or, with ``--lr auto``, ``lr_find``'s valley suggestion at each size.
Every stage checkpoints its best epoch in ``out/stages/best-<stage>.pth`` (``SaveModelCallback``,
which loads it back when the stage ends, so it is also the stage's final weights), logs its epochs
(``CSVLogger``) and refreshes ``out/export.pkl``; the state file ``out/train-state.json`` lists the
finished stages and their weights so ``--resume`` skips them and continues from the last one.

Progress: in an interactive terminal, fastai's progress bars; otherwise (CI logs,
``make demo > log``) no per-batch bars, which would write hundreds of carriage-return updates per
epoch, only the per-epoch table lines (:func:`progress_output`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from train.config import (
    EXPORT_NAME,
    HISTORY_NAME,
    STAGES_FOLDER,
    STATE_NAME,
    TrainConfig,
    stage_names,
)
from train.hardware import CPU_BATCH_SIZE, PROBE_LIMIT, Hardware, apply_precision

# Settings a finished stage depends on: resuming with different ones would mix two models.
_STATE_KEYS = ("arch", "sizes", "epochs", "pretrained", "stage2", "dataset")


class PretrainedWeightsUnavailable(RuntimeError):
    """The pretrained weights are not cached and cannot be downloaded."""


# --- the state file -------------------------------------------------------------------------


def read_state(out: Path) -> dict:
    """``out/train-state.json`` as a dict (``settings``, ``finished``, ``learning_rates``);
    an empty state when there is none."""
    path = Path(out) / STATE_NAME
    if not path.is_file():
        return {"settings": {}, "finished": [], "learning_rates": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); delete it to start over without --resume"
        ) from None


def write_state(out: Path, state: dict) -> None:
    """Write the state file atomically (a crash never leaves half a file)."""
    path = Path(out) / STATE_NAME
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(state, indent=2))
    os.replace(partial, path)


def check_resumable(state: dict, config: TrainConfig) -> None:
    """Raise ValueError when the state was written by a run with different key settings."""
    settings = config.as_dict()
    different = {
        key: (state["settings"][key], settings[key])
        for key in _STATE_KEYS
        if key in state.get("settings", {}) and state["settings"][key] != settings[key]
    }
    if different:
        described = ", ".join(
            f"{k}: was {old!r}, now {new!r}" for k, (old, new) in different.items()
        )
        raise ValueError(
            f"cannot --resume from {Path(config.out) / STATE_NAME}: settings changed "
            f"({described}); "
            "rerun with the same settings, or without --resume (or another --out) to start over"
        )


def combine_history(out: Path, stages: list[str]) -> pd.DataFrame:
    """Join the finished stages' epoch logs into ``out/history.csv`` (a ``stage`` column first).

    Returns
    -------
    DataFrame
        Columns ``stage``, ``epoch``, ``train_loss``, ``valid_loss``, ``accuracy``, ``time``.
    """
    tables = []
    for stage in stages:
        path = Path(out) / STAGES_FOLDER / f"{stage}-history.csv"
        if path.is_file():
            table = pd.read_csv(path)
            table.insert(0, "stage", stage)
            tables.append(table)
    history = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["stage"])
    history.to_csv(Path(out) / HISTORY_NAME, index=False)
    return history


# --- progress output ------------------------------------------------------------------------


def wants_progress_bars(stream=None) -> bool:
    """True when ``stream`` (default: ``sys.stdout`` now) is an interactive terminal.

    fastprogress's own test (``printing()``) is true for any stream in fastprogress 1.0, because it
    checks that ``isatty`` exists rather than calling it; this calls it.
    """
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed or detached stream
        return False


def epoch_lines_callback(write: Callable[[str], None] = print):
    """A fastai callback that writes the per-epoch table (``epoch train_loss valid_loss accuracy
    time``) as plain lines, as fastai's ``ProgressCallback`` does, without any progress bar.

    For a ``fit``'s ``cbs`` (so it is never exported with the learner). It takes over
    ``learn.logger`` like ``ProgressCallback`` and runs just before ``CSVLogger`` (order 59 vs
    60), so the CSV history is written as usual.
    """
    from fastai.callback.core import Callback
    from fastai.learner import noop

    class EpochLines(Callback):
        order = 59  # after Recorder (50), before CSVLogger and ProgressCallback (60)

        def before_fit(self):
            self.names = None
            self.previous_logger = None
            if self.learn.logger is not noop:
                self.previous_logger, self.learn.logger = self.learn.logger, self.write_values
                self.write_values(self.recorder.metric_names)

        def after_fit(self):
            if self.previous_logger is not None:
                self.learn.logger = self.previous_logger

        def write_values(self, values):
            cells = [f"{value:.6f}" if isinstance(value, float) else str(value) for value in values]
            if self.names is None:  # the header: names padded to 8, as fastprogress does
                self.names = [name.ljust(8) for name in cells]
                write("  ".join(self.names).rstrip())
            else:
                line = "".join(c.ljust(2 + len(n)) for c, n in zip(cells, self.names, strict=False))
                write(line.rstrip())

    return EpochLines()


@contextmanager
def progress_output(learn, *, bars: bool) -> Iterator[list]:
    """Within the block, ``learn`` shows fastai's progress bars when ``bars``, else none at all.

    Yields
    ------
    list
        Callbacks to pass to each ``fit`` inside the block: empty with bars (fastai's
        ``ProgressCallback`` writes the epoch table), else one :func:`epoch_lines_callback`.
        ``get_preds``, ``tta`` and ``lr_find`` need none (they log no epochs).
    """
    if bars:
        yield []
        return
    with learn.no_bar():
        yield [epoch_lines_callback(lambda line: print(line, flush=True))]


# --- the learner ----------------------------------------------------------------------------


def resolve_arch(name: str):
    """A torchvision model function by name, or the name itself for timm (when installed)."""
    import torchvision

    function = getattr(torchvision.models, name, None)
    if callable(function) and name in torchvision.models.list_models(torchvision.models):
        return function
    try:
        import timm
    except ImportError:
        timm = None
    if timm is not None and timm.list_models(name):
        return name
    choices = [n for n in torchvision.models.list_models(torchvision.models) if "resnet" in n]
    raise ValueError(
        f"--arch {name!r} is not a torchvision model"
        + ("" if timm is not None else " (and timm is not installed)")
        + f"; for example: {', '.join(sorted(choices))}"
    )


def create_learner(dls, config: TrainConfig, hardware: Hardware):
    """``vision_learner`` with accuracy, writing into ``config.out``; mixed precision per
    ``hardware``. Raises PretrainedWeightsUnavailable when the weights cannot be fetched."""
    from urllib.error import URLError

    from fastai.vision.all import accuracy, vision_learner

    arch = resolve_arch(config.arch)
    try:
        learn = vision_learner(
            dls,
            arch,
            pretrained=config.pretrained,
            metrics=accuracy,
            path=Path(config.out),
            model_dir=STAGES_FOLDER,
        )
    except (URLError, ConnectionError, TimeoutError, OSError) as error:
        if not config.pretrained:
            raise
        raise PretrainedWeightsUnavailable(
            f"the pretrained {config.arch} weights are not cached and could not be downloaded "
            f"({type(error).__name__}: {error}); connect to the internet once, or train from "
            "scratch with --no-pretrained"
        ) from None
    return apply_precision(learn, hardware)


def choose_batch_size(
    config: TrainConfig, hardware: Hardware, table: pd.DataFrame, classes: int
) -> int:
    """``--bs`` when given; else the largest that fits on the GPU at the largest size (probe),
    ``CPU_BATCH_SIZE`` on the CPU; never more than the training images."""
    train_count = int((~table["is_valid"]).sum())
    if config.batch_size is not None:
        return config.batch_size
    if hardware.device != "cuda":
        return max(1, min(CPU_BATCH_SIZE, train_count))
    from fastai.vision.all import create_vision_model

    from train.hardware import probe_batch_size

    model = create_vision_model(resolve_arch(config.arch), classes, pretrained=False)
    found = probe_batch_size(
        model,
        size=max(config.sizes),
        classes=classes,
        precision=hardware.precision,
        limit=min(PROBE_LIMIT, train_count),
    )
    del model
    return found


# --- the recipe -----------------------------------------------------------------------------


def _export(learn, out: Path) -> None:
    """``learn.export`` to ``out/export.pkl`` atomically, without the GPU-only callbacks."""
    from fastai.callback.channelslast import ChannelsLast
    from fastai.callback.fp16 import MixedPrecision

    speed_callbacks = [cb for cb in learn.cbs if isinstance(cb, (MixedPrecision, ChannelsLast))]
    learn.remove_cbs(speed_callbacks)
    try:
        learn.export(EXPORT_NAME + ".partial")
        os.replace(Path(out) / (EXPORT_NAME + ".partial"), Path(out) / EXPORT_NAME)
    finally:
        learn.add_cbs(speed_callbacks)


def best_epoch_checkpoint(*, monitor: str, fname: str):
    """fastai's ``SaveModelCallback`` (save the best epoch, load it back after the fit) that skips
    the reload when the best epoch is the last one: the weights in memory are already those."""
    from fastai.callback.tracker import SaveModelCallback

    class BestEpochCheckpoint(SaveModelCallback):
        best_epoch = -1

        def after_epoch(self):
            super().after_epoch()
            if self.new_best:
                self.best_epoch = self.epoch

        def after_fit(self, **kwargs):
            if self.best_epoch != self.n_epoch - 1:
                super().after_fit(**kwargs)

    return BestEpochCheckpoint(monitor=monitor, fname=fname)


def find_learning_rate(learn) -> float:
    """``lr_find``'s valley suggestion for the learner as it stands (frozen or not)."""
    suggestion = learn.lr_find(show_plot=False)
    return float(suggestion.valley)


def train(
    config: TrainConfig,
    table: pd.DataFrame,
    hardware: Hardware,
    *,
    log: Callable[[str], None] = print,
    progress_bars: bool | None = None,
):
    """Run the recipe's unfinished stages; return the learner at the last stage's size.

    Parameters
    ----------
    config : TrainConfig
    table : DataFrame
        ``train.loaders.training_table`` output.
    hardware : Hardware
    log : callable
        Receives one line per event (stage started, skipped, finished).
    progress_bars : bool, optional
        fastai's per-batch progress bars; None = only when stdout is a terminal
        (:func:`wants_progress_bars`). Without them, each epoch is one plain table line.

    Returns
    -------
    learn : fastai Learner
        Weights of the last finished stage (best epoch of that stage), DataLoaders at the
        last size.
    state : dict
        The state file's content: ``settings``, ``finished`` (list of
        ``{"stage", "weights", "epochs", "learning_rate"}``), ``learning_rates`` by size,
        ``batch_size``.
    """
    from fastai.callback.progress import CSVLogger
    from fastai.vision.all import set_seed

    from train.loaders import make_dataloaders

    out = Path(config.out)
    (out / STAGES_FOLDER).mkdir(parents=True, exist_ok=True)
    state = read_state(out) if config.resume else {"finished": [], "learning_rates": {}}
    if config.resume:
        check_resumable(state, config)
    state["settings"] = config.as_dict()
    finished = {entry["stage"]: entry for entry in state["finished"]}
    if not config.resume:
        # A fresh run forgets the old state at once: its checkpoints are about to be rewritten,
        # so a later --resume must not trust them. export.pkl stays until a stage replaces it.
        write_state(out, state)

    set_seed(config.seed, reproducible=False)
    classes = table.loc[~table["is_valid"], "label"].nunique()
    if config.batch_size is None and config.resume and state.get("batch_size"):
        batch_size = state["batch_size"]  # --bs auto on resume: the size probed before
    else:
        batch_size = choose_batch_size(config, hardware, table, classes)
    state["batch_size"] = batch_size
    log(f"batch size {batch_size}")

    def loaders(size: int):
        return make_dataloaders(
            table,
            size=size,
            batch_size=batch_size,
            workers=hardware.workers,
            pin_memory=hardware.pin_memory,
            device=hardware.device,
            seed=config.seed,
        )

    stages = stage_names(config)
    current_size = config.sizes[0]
    learn = create_learner(loaders(current_size), config, hardware)
    bars = wants_progress_bars() if progress_bars is None else progress_bars
    pending_weights = None  # a stage finished in an earlier run, loaded before training on
    for stage in stages:
        kind, size = stage.split("-")[0], int(stage.split("-")[1])
        if size != current_size:
            learn.dls = loaders(size)
            current_size = size
        if stage in finished:
            log(f"stage {stage}: finished in an earlier run, skipped (--resume)")
            pending_weights = finished[stage]["weights"]
            continue
        if pending_weights is not None:
            learn.load(pending_weights, with_opt=False)
            pending_weights = None
        if kind == "frozen":
            learn.freeze()
        else:
            learn.unfreeze()
        rate = config.learning_rate or state["learning_rates"].get(str(size))
        if rate is None:
            with progress_output(learn, bars=bars):
                rate = find_learning_rate(learn)
            log(f"lr_find at {size} px ({kind}): valley {rate:.2e}")
        state["learning_rates"][str(size)] = rate
        max_lr = rate if kind == "frozen" else slice(rate / 200, rate / 2)
        epochs = config.epochs[0] if kind == "frozen" else config.epochs[1]
        log(f"stage {stage}: {epochs} epoch(s), max_lr {max_lr}")
        with progress_output(learn, bars=bars) as progress_callbacks:
            learn.fit_one_cycle(
                epochs,
                max_lr,
                cbs=[
                    *progress_callbacks,
                    CSVLogger(fname=f"{STAGES_FOLDER}/{stage}-history.csv"),
                    best_epoch_checkpoint(monitor=config.monitor, fname=f"best-{stage}"),
                ],
            )
        # SaveModelCallback has loaded the best epoch: its checkpoint is the stage's weights.
        _export(learn, out)
        state["finished"].append(
            {"stage": stage, "weights": f"best-{stage}", "epochs": epochs, "learning_rate": rate}
        )
        write_state(out, state)
        combine_history(out, [entry["stage"] for entry in state["finished"]])
    if pending_weights is not None:  # the last stages were all finished earlier
        learn.load(pending_weights, with_opt=False)
    write_state(out, state)
    combine_history(out, [entry["stage"] for entry in state["finished"]])
    return learn, state
