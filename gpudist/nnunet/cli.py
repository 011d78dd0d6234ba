"""`gpudist-nnunet train|predict ARGS`: nnU-Net v2's `nnUNetv2_train` / `nnUNetv2_predict` with
the same ARGS and `-tr nnUNetTrainerBoundaryLoss` unless ARGS name a trainer.

    gpudist-nnunet train DATASET CONFIGURATION FOLD [nnUNetv2_train options]
    gpudist-nnunet predict -i IN -o OUT -d DATASET -c CONFIGURATION [nnUNetv2_predict options]

nnU-Net looks trainers up by class name: inside its own package, then in the folders of the
`nnUNet_extTrainer` environment variable. This command puts gpudist's trainer folder first on
that variable (what multi-GPU worker processes use) and, in this process, searches those folders
before nnU-Net's package: nnU-Net's own search imports every trainer module it ships, and some
import timm and torchvision, which a CPU-only machine may lack.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

TRAINER = "nnUNetTrainerBoundaryLoss"
TRAINERS_DIR = Path(__file__).resolve().with_name("trainers")
LOOKUP = "recursive_find_trainer_class_by_name"  # the name both commands' modules import
COMMANDS = {  # subcommand -> (module, entry function, the nnU-Net command it mirrors)
    "train": ("nnunetv2.run.run_training", "run_training_entry", "nnUNetv2_train"),
    "predict": ("nnunetv2.inference.predict_from_raw_data", "predict_entry_point",
                "nnUNetv2_predict"),
}


def add_trainer_folder() -> list[str]:
    """Puts gpudist's trainer folder first on `nnUNet_extTrainer`; returns the folders."""
    folders = [str(TRAINERS_DIR)] + [f for f in os.environ.get("nnUNet_extTrainer", "").split(
        os.pathsep) if f and f != str(TRAINERS_DIR)]
    os.environ["nnUNet_extTrainer"] = os.pathsep.join(folders)
    return folders


def find_trainer(name: str) -> type:
    """The nnU-Net trainer class called `name`, from the `nnUNet_extTrainer` folders first, then
    from nnU-Net's package (nnU-Net's own lookup)."""
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    for folder in add_trainer_folder():
        if os.path.isdir(folder):
            found = recursive_find_python_class(folder, name, None, base_folder=folder,
                                                cleanup_imports_from_base_folder=True)
            if found is not None:
                return found
    return recursive_find_trainer_class_by_name(name)


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the nnU-Net command of `argv[0]` ("train" or "predict") with the rest of `argv`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    module_name, function, prog = COMMANDS[argv[0]]
    args = argv[1:]
    if "-tr" not in args:
        args += ["-tr", TRAINER]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise SystemExit(f"gpudist-nnunet needs nnU-Net v2 ({e}): pip install 'gpudist[nnunet]'")
    if not hasattr(module, LOOKUP):
        raise SystemExit(f"this nnunetv2 version's {module_name} has no {LOOKUP}; gpudist-nnunet "
                         "supports nnunetv2 2.8")
    add_trainer_folder()
    setattr(module, LOOKUP, find_trainer)
    sys.argv = [prog, *args]
    getattr(module, function)()


if __name__ == "__main__":
    main()
