"""Sub-commands for training, prediction, evaluation and the demo."""


def add_commands(sub) -> None:
    pass
