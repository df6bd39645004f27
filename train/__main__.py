"""``python -m train``: audit the dataset, then train a fastai classifier and write its report.

Exit codes: 0 trained; 1 the audits failed (nothing trained; ``--allow-audit-failures`` to
override); 2 a usage problem (bad dataset, offline without cached weights, ...); 130 interrupted
(finished stages are kept: rerun with ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train.config import EXPORT_NAME, HISTORY_NAME, STAGES_FOLDER, STATE_NAME, TrainConfig

EXIT_AUDIT_FAILED = 1
EXIT_USAGE = 2


def _batch_size(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'auto' or an integer") from None


def _learning_rate(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'auto' or a number") from None


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig(dataset=Path("."))
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Run the data audits on a dataset; if they pass, train a fastai image "
        "classifier with the original project's recipe (frozen then unfrozen 1cycle at each size "
        "of a progressive resizing) and write reports/training.html.",
        epilog=f"Outputs in --out: {EXPORT_NAME} (learn.export), {HISTORY_NAME} (every epoch), "
        f"{STATE_NAME} (finished stages, for --resume), {STAGES_FOLDER}/ (per-stage weights, "
        "best-epoch checkpoints, per-stage logs). In --report-dir: training.html, "
        "predictions.csv, confusion.csv, and the audit's audit.html. Progress: fastai's bars in "
        "a terminal; one plain line per epoch when the output is redirected (CI logs).",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        type=Path,
        help="dataset folder (<split>/<label>/...) or CSV (path,label,split)",
    )
    parser.add_argument(
        "--arch",
        default=defaults.arch,
        help="torchvision (or timm, if installed) model name (default: %(default)s)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(defaults.sizes),
        metavar="PX",
        help="image sides for progressive resizing (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        nargs=2,
        default=list(defaults.epochs),
        metavar=("FROZEN", "UNFROZEN"),
        help="epochs of stage 1 (frozen) and stage 2 (unfrozen) at each size "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--bs",
        type=_batch_size,
        default=None,
        metavar="auto|N",
        help="batch size; auto = the largest that fits on the GPU, 32 on the CPU (default: auto)",
    )
    parser.add_argument(
        "--lr",
        type=_learning_rate,
        default=None,
        metavar="auto|FLOAT",
        help="stage-1 learning rate; auto = lr_find's valley at each size (default: auto)",
    )
    parser.add_argument(
        "--no-pretrained",
        dest="pretrained",
        action="store_false",
        help="train from random weights (no download needed)",
    )
    parser.add_argument(
        "--stage2",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train unfrozen with discriminative learning rates after each "
        "frozen stage (default: on)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=defaults.out,
        help="folder for the model files (default: %(default)s)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=defaults.report_dir,
        help="folder for training.html and the audit report (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-audit-failures",
        action="store_true",
        help="train even if the data audits fail (the report says so)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"skip the stages --out/{STATE_NAME} lists as finished",
    )
    parser.add_argument(
        "--monitor",
        choices=["valid_loss", "accuracy"],
        default=defaults.monitor,
        help="what the best-epoch checkpoint watches (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DataLoader worker processes (default: up to 8 on a GPU, 0 on CPU)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for torch (torch.set_num_threads), for CPU training; "
        "default: torch's default (one per core)",
    )
    parser.add_argument(
        "--no-tta",
        dest="tta",
        action="store_false",
        help="skip the test-time-augmentation accuracy",
    )
    parser.add_argument(
        "--top-losses",
        type=int,
        default=defaults.top_losses,
        help="images in the report's top-losses gallery (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)"
    )
    return parser


def config_from_arguments(arguments: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        dataset=arguments.dataset,
        arch=arguments.arch,
        sizes=tuple(arguments.sizes),
        epochs=tuple(arguments.epochs),
        batch_size=arguments.bs,
        learning_rate=arguments.lr,
        pretrained=arguments.pretrained,
        stage2=arguments.stage2,
        out=arguments.out,
        report_dir=arguments.report_dir,
        allow_audit_failures=arguments.allow_audit_failures,
        resume=arguments.resume,
        monitor=arguments.monitor,
        workers=arguments.workers,
        threads=arguments.threads,
        tta=arguments.tta,
        top_losses=arguments.top_losses,
        seed=arguments.seed,
    )


def _print_now(line: str) -> None:
    """``print`` that flushes, so a log file shows each line when it happens."""
    print(line, flush=True)


def run(config: TrainConfig) -> int:
    """Scan, gate, train, report. Returns the exit code."""
    from data import scan
    from train.gate import describe_gate, run_audit_gate
    from train.loaders import training_table

    table = training_table(scan(config.dataset))
    print(
        f"dataset {config.dataset}: {int((~table['is_valid']).sum())} train, "
        f"{int(table['is_valid'].sum())} valid images, {table['label'].nunique()} classes"
    )

    print("running the data audits (pytest audits/) ...", flush=True)
    gate = run_audit_gate(config.dataset, config.report_dir)
    print(describe_gate(gate), flush=True)
    if not gate.passed:
        if not config.allow_audit_failures:
            print(
                "refusing to train: fix the dataset (see the audit report in "
                f"{config.report_dir}/audit.html), or train anyway with --allow-audit-failures "
                "(the training report will say so)",
                file=sys.stderr,
            )
            return EXIT_AUDIT_FAILED
        print("training anyway (--allow-audit-failures); the report records the failures")

    import torch

    from train.hardware import detect_hardware
    from train.recipe import train, wants_progress_bars
    from train.report import write_training_report

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    hardware = detect_hardware(workers=config.workers)
    print(hardware.note, flush=True)
    if hardware.device == "cpu":
        print(f"torch uses {torch.get_num_threads()} CPU threads (--threads N)", flush=True)
    progress_bars = wants_progress_bars()  # fastai's bars in a terminal, plain lines in a log
    learn, state = train(config, table, hardware, log=_print_now, progress_bars=progress_bars)
    from train.recipe import combine_history

    history = combine_history(config.out, [entry["stage"] for entry in state["finished"]])
    settings = {
        **config.as_dict(),
        "batch_size_used": state["batch_size"],
        "learning_rates": state["learning_rates"],
        "device": hardware.device,
        "precision": hardware.precision,
        "cpu_threads": torch.get_num_threads(),
    }
    gate_record = {**gate.as_dict(), "output": gate.output}
    path = write_training_report(
        learn,
        settings=settings,
        gate=gate_record,
        allowed=config.allow_audit_failures,
        hardware_note=hardware.note,
        history=history,
        report_dir=config.report_dir,
        tta=config.tta,
        top_losses=config.top_losses,
        progress_bars=progress_bars,
    )
    print(f"model: {Path(config.out) / EXPORT_NAME}\nreport: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        config = config_from_arguments(arguments)
    except ValueError as error:
        parser.error(str(error))
    from train.recipe import PretrainedWeightsUnavailable

    try:
        return run(config)
    except (
        FileNotFoundError,
        NotADirectoryError,
        ValueError,
        PretrainedWeightsUnavailable,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            f"interrupted; finished stages are kept in {config.out} (rerun with --resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
